package queueurl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stripewebhook/stripewebhook/queuetest"
)

// Engines are the engines Fresh opens, in the order tests run them.
var Engines = []string{"sqlite", "postgres", "jetstream"}

// Fresh returns the URL of a new, empty queue of engine for the test t: a
// SQLite file in t's temporary directory, or a River queue or JetStream
// stream of its own on the server that STRIPEWEBHOOK_POSTGRES_URL or
// STRIPEWEBHOOK_NATS_URL names, skipping t with the variable's name when
// it is not set.
func Fresh(t testing.TB, engine string) string {
	t.Helper()
	ns := queuetest.Namespace(t)
	server := func(env string) string {
		u := os.Getenv(env)
		if u == "" {
			t.Skipf("set %s to run against %s", env, engine)
		}
		return u
	}
	switch engine {
	case "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "queue.db")
	case "postgres":
		u := server("STRIPEWEBHOOK_POSTGRES_URL")
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return u + sep + "queue=" + strings.ToLower(ns)
	case "jetstream":
		return server("STRIPEWEBHOOK_NATS_URL") + "?stream=" + ns + "&subject=" + strings.ToLower(ns)
	}
	t.Fatalf("queueurl.Fresh: no engine %q", engine)
	return ""
}
