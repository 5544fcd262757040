#!/usr/bin/env bash
# The project's test command: every module of the workspace, with the race
# detector, the store tests against real Redis and PostgreSQL servers, the
# queue tests against NATS JetStream and RabbitMQ, the SQS consumer against
# fauxqs (installed with npm into scripts/fauxqs), and the API request shapes
# against stripe-mock. It starts a server that is not
# running (installing stripe-mock with go install if it is missing) and
# fails if one cannot be reached.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -run Foo   # extra flags go to go test
set -euo pipefail
cd "$(dirname "$0")/.."

export STRIPEWEBHOOK_REDIS_URL="${STRIPEWEBHOOK_REDIS_URL:-redis://127.0.0.1:6379/0}"
export STRIPEWEBHOOK_POSTGRES_URL="${STRIPEWEBHOOK_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export STRIPEWEBHOOK_STRIPE_MOCK_URL="${STRIPEWEBHOOK_STRIPE_MOCK_URL:-http://127.0.0.1:12111}"
export STRIPEWEBHOOK_NATS_URL="${STRIPEWEBHOOK_NATS_URL:-nats://127.0.0.1:4222}"
export STRIPEWEBHOOK_AMQP_URL="${STRIPEWEBHOOK_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
export STRIPEWEBHOOK_SQS_URL="${STRIPEWEBHOOK_SQS_URL:-http://127.0.0.1:4566}"

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

ensure() { # name host port start-command...
	local name=$1 host=$2 port=$3
	shift 3
	if port_open "$host" "$port"; then return 0; fi
	echo "test.sh: $name is not running on $host:$port; starting it" >&2
	"$@" >&2 || true
	for _ in $(seq 1 120); do
		if port_open "$host" "$port"; then return 0; fi
		sleep 0.5
	done
	echo "test.sh: $name cannot be reached on $host:$port" >&2
	exit 1
}

hostport() { # URL -> "host port"
	local rest=${1#*://}
	rest=${rest#*@}
	rest=${rest%%/*}
	echo "${rest%:*} ${rest##*:}"
}

read -r rh rp <<<"$(hostport "$STRIPEWEBHOOK_REDIS_URL")"
ensure Redis "$rh" "$rp" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$rp" --save "" --appendonly no --dir /tmp
read -r ph pp <<<"$(hostport "$STRIPEWEBHOOK_POSTGRES_URL")"
ensure PostgreSQL "$ph" "$pp" bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start'

read -r nh np <<<"$(hostport "$STRIPEWEBHOOK_NATS_URL")"
start_nats() { # with JetStream
	mkdir -p /tmp/stripewebhook-nats
	nohup nats-server -js -a "$nh" -p "$np" -sd /tmp/stripewebhook-nats >/tmp/stripewebhook-nats.log 2>&1 &
}
ensure "NATS (JetStream)" "$nh" "$np" start_nats
read -r ah ap <<<"$(hostport "${STRIPEWEBHOOK_AMQP_URL%/}")"
ensure RabbitMQ "$ah" "$ap" rabbitmq-server -detached
read -r mh mp <<<"$(hostport "$STRIPEWEBHOOK_STRIPE_MOCK_URL")"
start_stripe_mock() {
	local bin
	bin=$(command -v stripe-mock || true)
	if [ -z "$bin" ]; then
		bin="$(go env GOPATH)/bin/stripe-mock"
		[ -x "$bin" ] || go install github.com/stripe/stripe-mock@v0.203.0
	fi
	nohup "$bin" -http-port "$mp" >/tmp/stripe-mock.log 2>&1 &
}
ensure stripe-mock "$mh" "$mp" start_stripe_mock
read -r sh sp <<<"$(hostport "$STRIPEWEBHOOK_SQS_URL")"
start_fauxqs() { # an SQS-compatible server (scripts/fauxqs/package.json says which and why)
	[ -d scripts/fauxqs/node_modules/fauxqs ] || npm ci --prefix scripts/fauxqs --no-audit --no-fund >&2
	FAUXQS_PORT="$sp" FAUXQS_HOST="$sh" FAUXQS_LOGGER=false \
		nohup node scripts/fauxqs/node_modules/fauxqs/dist/cli.js >/tmp/stripewebhook-fauxqs.log 2>&1 &
}
ensure "SQS (fauxqs)" "$sh" "$sp" start_fauxqs

# Allocation counts only mean something without the race detector.
go test -count=1 -run 'Allocat' .

# Each module of go.work, by explicit pattern: ./... stops at nested modules.
modules=$(go list -m -f '{{.Dir}}' | sed "s|^$PWD|.|; s|\$|/...|")
exec go test -race -count=1 "$@" $modules
