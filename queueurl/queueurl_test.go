package queueurl_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/queuetest"
	"github.com/stripewebhook/stripewebhook/queueurl"
	"github.com/stripewebhook/stripewebhook/queueurl/queueurltest"
)

// roundTrip enqueues a message on the queue raw names and receives it
// back, through a second Open of the same URL.
func roundTrip(t *testing.T, raw string) {
	t.Helper()
	ctx := context.Background()
	q, closeQ, err := queueurl.Open(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.ReplaceAll(queuetest.Namespace(t), "QT", "evt_")
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: id, Key: id, Secret: "s", Payload: []byte(`{"id":"` + id + `"}`)}); err != nil {
		t.Fatal(err)
	}
	closeQ()
	q, closeQ, err = queueurl.Open(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQ()
	for {
		d, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		if d.Message().ID == id {
			return
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, engine := range queueurltest.Engines {
		t.Run(engine, func(t *testing.T) { roundTrip(t, queueurltest.Fresh(t, engine)) })
	}
	roundTrip(t, "sqlite://"+filepath.Join(t.TempDir(), "named.db")+"?queue=other")
}

func TestOpenExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	if _, _, err := queueurl.OpenExisting(context.Background(), "sqlite://"+path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("OpenExisting created the file")
	}
	roundTrip(t, "sqlite://"+path)
	_, closeQ, err := queueurl.OpenExisting(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	closeQ()
}

func TestErrors(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://u:hunter2@localhost/":              "is not nats://",
		"nats://u:hunter2@127.0.0.1:1?queue=S":      "NATS at nats://u:xxxxx@127.0.0.1:1",
		"postgres://u:hunter2@127.0.0.1:1/db?x=%zz": "",
		"sqlite://":             "needs a file path",
		"http://u:hunter2@[::1": "is not a URL",
	} {
		_, _, err := queueurl.Open(context.Background(), raw)
		if err == nil {
			t.Errorf("%s: opened", raw)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the password shows: %v", raw, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	_, _, err := queueurl.Open(context.Background(), "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("%v", err)
	}
	_, _, err = queueurl.Open(context.Background(), "nats://u:hunter2@127.0.0.1:1")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("%v", err)
	}
}

func TestPoolConfig(t *testing.T) {
	for raw, want := range map[string]int32{
		"postgres://u@127.0.0.1:5432/db":                  queueurl.DefaultPoolConns,
		"postgres://u@127.0.0.1:5432/db?pool_max_conns=3": 3,
	} {
		cfg, err := queueurl.PoolConfig(raw)
		if err != nil || cfg.MaxConns != want {
			t.Errorf("%s: %v connections, %v; want %d", raw, cfg, err, want)
		}
	}
	if _, err := queueurl.PoolConfig("postgres://u:hunter2@127.0.0.1:5432/db?pool_max_conns=x"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a bad pool_max_conns: %v", err)
	}
}

// A SQLite queue keeps every payload: its file, and the -wal and -shm
// files SQLite makes beside it, are readable by their owner only, whatever
// the umask.
func TestSQLiteFileIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual one, under which files are 0644
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "queue.db")
	ctx := context.Background()
	q, closeQ, err := queueurl.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQ()
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: "evt_private", Key: "cus_1", Payload: []byte(`{"email":"jenny.rosen@example.com"}`)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(name), mode)
		}
	}
}
