package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/sqlitestore"
)

// open opens a database file of the test's own the way the example does.
func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t *testing.T, db *sql.DB, opts ...sqlitestore.Option) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.New(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "dedup.db"))
	dedupstoretest.Run(t, dedupstoretest.Config{
		New: func(t *testing.T) stripewebhook.Store { return newStore(t, db) },
	})
}

// What one process completed, another process on the same file (the
// restarted one, after a crash) finds done: the store is the file.
func TestCompletedSurvivesTheProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dedup.db")
	ctx := context.Background()
	first := newStore(t, open(t, path))
	c, err := first.Claim(ctx, "evt_kept", time.Minute)
	if err != nil || c.Status != stripewebhook.Claimed {
		t.Fatalf("claim: %v %v", c, err)
	}
	if err := first.Complete(ctx, "evt_kept", c.Token, time.Hour); err != nil {
		t.Fatal(err)
	}
	again := newStore(t, open(t, path)) // a new pool: nothing shared but the file
	if c, err := again.Claim(ctx, "evt_kept", time.Minute); err != nil || c.Status != stripewebhook.Done {
		t.Fatalf("after a restart: %v %v, want done", c, err)
	}
}

// Cleanup deletes what has expired, and only that.
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, open(t, filepath.Join(t.TempDir(), "dedup.db")), sqlitestore.WithName("other_dedup"))
	short, _ := s.Claim(ctx, "evt_short", time.Millisecond)
	long, _ := s.Claim(ctx, "evt_long", time.Hour)
	time.Sleep(10 * time.Millisecond)
	if n, err := s.Cleanup(ctx); err != nil || n != 1 {
		t.Fatalf("cleanup: %d rows, %v; want 1", n, err)
	}
	if err := s.Complete(ctx, "evt_long", long.Token, time.Hour); err != nil {
		t.Fatalf("the unexpired claim was deleted: %v", err)
	}
	_ = short
}

func TestConfigErrors(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "dedup.db"))
	for name, c := range map[string]struct {
		db   *sql.DB
		opts []sqlitestore.Option
		want string
	}{
		"nil db":   {nil, nil, "sqlitestore.New: nil DB"},
		"bad name": {db, []sqlitestore.Option{sqlitestore.WithName("x; DROP TABLE y")}, "sqlitestore.WithName"},
		"empty":    {db, []sqlitestore.Option{sqlitestore.WithName("")}, "sqlitestore.WithName"},
	} {
		_, err := sqlitestore.New(c.db, c.opts...)
		if !errors.Is(err, stripewebhook.ErrInvalidOption) || err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalidOption naming %s", name, err, c.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
