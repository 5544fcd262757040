// Package queueurltest gives each test a new, empty queue of its own on
// each engine, as a URL for queueurl.Open, for the tests of programs that
// take a -queue URL (the stripewebhook command, the example server). Like
// net/http/httptest, it is for tests only.
package queueurltest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stripewebhook/stripewebhook/amqpqueue"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/queuetest"
)

// Engines are the engines Fresh opens, in the order tests run them.
var Engines = []string{"sqlite", "postgres", "jetstream", "rabbitmq"}

// Fresh returns the URL of a new, empty queue of engine for the test t: a
// SQLite file in t's temporary directory, or a River queue or JetStream
// stream or RabbitMQ queue of its own on the server that
// STRIPEWEBHOOK_POSTGRES_URL, STRIPEWEBHOOK_NATS_URL or
// STRIPEWEBHOOK_AMQP_URL names, skipping t with the variable's name when it
// is not set. A queue on a server is deleted, with what it holds, when t
// ends.
func Fresh(t testing.TB, engine string) string {
	t.Helper()
	ns := queuetest.Namespace(t)
	switch engine {
	case "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "queue.db")
	case "postgres":
		u := dedupstoretest.ServerURL(t, "STRIPEWEBHOOK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		t.Cleanup(func() {
			if conn, err := pgx.Connect(context.Background(), u); err == nil {
				conn.Exec(context.Background(), `DELETE FROM river_job WHERE queue = $1`, strings.ToLower(ns))
				conn.Close(context.Background())
			}
		})
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return u + sep + "queue=" + strings.ToLower(ns)
	case "rabbitmq":
		u := dedupstoretest.ServerURL(t, "STRIPEWEBHOOK_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
		t.Cleanup(func() {
			if q, err := amqpqueue.New(context.Background(), amqpqueue.Dial(u), amqpqueue.WithName(ns)); err == nil {
				q.Delete(context.Background())
			}
		})
		return u + "?queue=" + ns
	case "jetstream":
		u := dedupstoretest.ServerURL(t, "STRIPEWEBHOOK_NATS_URL", "nats://127.0.0.1:4222")
		t.Cleanup(func() {
			if nc, err := nats.Connect(u); err == nil {
				if js, err := jetstream.New(nc); err == nil {
					js.DeleteStream(context.Background(), ns)
					js.DeleteStream(context.Background(), ns+"_DEAD")
				}
				nc.Close()
			}
		})
		return u + "?queue=" + ns
	}
	t.Fatalf("queueurltest.Fresh: no engine %q", engine)
	return ""
}
