#!/usr/bin/env bash
# Installs every published module as a user would, before it is published:
# from a file-based module proxy made from `git archive HEAD` at the release
# version (versions.txt), in a new module outside the workspace:
#
#   go get each published module@VERSION, build a program that imports
#   every public package, go install the command @VERSION and run it -h,
#   and check that neither production binary links testing.
#
# Then each module of the tree vets on its own outside the workspace, with
# -mod=readonly. It fails on a replace directive, a placeholder or differing version, a
# go directive other than the workspace's, or an import of another module's
# internal package (go run ./tools/release check), and on anything that
# stops the go command from installing what the tags would publish.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/localproxy.sh
root=$PWD

echo "install-check: the module set (go run ./tools/release check)"
go run ./tools/release check
version=$(go run ./tools/release version)
localproxy_version=$version

tmp=$(mktemp -d)
trap 'localproxy_cleanup "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/user" "$tmp/bin"
git archive HEAD | tar -x -C "$tmp/src"
(
	cd "$tmp/src"
	# What RELEASING.md's `release set` commits before the tags: the go.sum
	# lines of this repository's modules, as the tree now is.
	go run ./tools/release set "$version"
	go run ./tools/release proxy "$tmp/proxy"
	go run ./tools/release packages >"$tmp/packages"
	awk '$1 == "publish" {print $2}' versions.txt >"$tmp/published"
	awk '$1 == "publish" || $1 == "private" {print $2}' versions.txt >"$tmp/modules"
)
stale=$(cd "$tmp/src" && for f in $(find . -name go.sum -printf '%P\n'); do cmp -s "$f" "$root/$f" || echo "$f"; done)
if [ -n "$stale" ]; then
	echo "install-check: (HEAD's go.sum lines for this repository's modules are stale in" $stale"; fine between releases, not at a tag: RELEASING.md)"
fi

# quiet runs a go command, showing what it printed only when it fails.
quiet() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "install-check: $* failed"; exit 1; }; }

localproxy_env "$tmp"
cd "$tmp/user"
go mod init example.com/user >/dev/null 2>&1
while read -r dir; do
	path=github.com/stripewebhook/stripewebhook
	[ "$dir" = . ] || path=$path/$dir
	echo "install-check: go get $path@$version"
	quiet go get "$path@$version"
done <"$tmp/published"

{
	echo "// Command user imports every public package of the release."
	echo "package main"
	echo
	echo "import ("
	sed 's/.*/\t_ "&"/' "$tmp/packages"
	echo ")"
	echo
	echo "func main() {}"
} >main.go
echo "install-check: build a program importing $(wc -l <"$tmp/packages") public packages"
quiet go mod tidy
go build -o "$tmp/bin/user" .

cmd=github.com/stripewebhook/stripewebhook/cmd/stripewebhook
echo "install-check: go install $cmd@$version"
GOBIN="$tmp/bin" go install "$cmd@$version"
"$tmp/bin/stripewebhook" -h >"$tmp/help" 2>&1 || { cat "$tmp/help"; echo "install-check: stripewebhook -h failed"; exit 1; }
grep -q '^usage: stripewebhook COMMAND' "$tmp/help" || { cat "$tmp/help"; echo "install-check: stripewebhook -h printed no usage"; exit 1; }

# Each module of the tree, as tagged, builds on its own outside the
# workspace with -mod=readonly: its go.mod and go.sum name everything its
# packages and tests import (the workspace would hide a missing one).
while read -r dir; do
	echo "install-check: GOWORK=off go vet ./... in $dir (-mod=readonly)"
	(cd "$tmp/src/$dir" && GOFLAGS=-mod=readonly quiet go vet ./...)
done <"$tmp/modules"

# Production binaries link no test helper: the command as installed, and the
# example server (from the tree: examples is never published).
testhelpers() { go list -deps "$@" | grep -x -e testing -e '.*/webhooktest' -e '.*/dedupstoretest' -e '.*/queuetest' -e '.*/queueurltest' -e '.*/sqswebhooktest' || true; }
bad=$(testhelpers "$cmd")
[ -z "$bad" ] || { echo "install-check: $cmd links" $bad; exit 1; }
bad=$(cd "$root" && env -u GOWORK -u GOFLAGS -u GOPROXY -u GONOSUMDB bash -c "$(declare -f testhelpers); testhelpers ./examples/basic")
[ -z "$bad" ] || { echo "install-check: examples/basic links" $bad; exit 1; }
echo "install-check: every published module installs at $version"
