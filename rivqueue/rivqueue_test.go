package rivqueue_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/queuetest"
	"github.com/stripewebhook/stripewebhook/rivqueue"
)

// envURL names the PostgreSQL server the tests use; scripts/test.sh sets it.
const envURL = "STRIPEWEBHOOK_POSTGRES_URL"

func dsn(t *testing.T) string {
	return dedupstoretest.ServerURL(t, envURL, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

var migrate sync.Once

func open(t *testing.T, dsn, ns string) stripewebhook.Queue {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := rivqueue.New(pool, rivqueue.WithName(strings.ToLower(ns)), rivqueue.WithVisibilityTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	migrate.Do(func() {
		if err := q.Migrate(context.Background()); err != nil {
			t.Fatalf("%s cannot be reached or migrated: %v", envURL, err)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Close(ctx)
		// What the test left (dead letters, unfinished jobs) would pile up
		// run after run in river_job and slow every later insert.
		pool.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, strings.ToLower(ns))
		pool.Close()
	})
	return q
}

func TestConformance(t *testing.T) {
	d := dsn(t)
	u, err := url.Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	queuetest.Run(t, queuetest.Config{
		Open:       func(t *testing.T, ns string) stripewebhook.Queue { return open(t, d, ns) },
		AckWait:    time.Second,
		Redelivery: 45 * time.Second, // a dead process: River's rescuer runs every 30 s, on the elected leader
		Backend:    u.Host,
		OpenVia: func(t *testing.T, ns, addr string) stripewebhook.Queue {
			v := *u
			v.Host = addr
			return open(t, v.String(), ns)
		},
	})
}

// A configuration mistake is ErrInvalidOption, naming the option.
func TestInvalidConfig(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "never.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for want, opts := range map[string][]rivqueue.Option{
		"rivqueue.WithName":               {rivqueue.WithName("")},
		"rivqueue.WithVisibilityTimeout":  {rivqueue.WithVisibilityTimeout(-time.Second)},
		"rivqueue.WithFetchers":           {rivqueue.WithFetchers(0)},
		"rivqueue.WithCompletedRetention": {rivqueue.WithCompletedRetention(0)},
	} {
		_, err := rivqueue.NewSQLite(db, opts...)
		if !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	if _, err := rivqueue.New(nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Errorf("nil pool: %v", err)
	}
	if _, err := rivqueue.NewSQLite(nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Errorf("nil database: %v", err)
	}
}

// The embedded option: River on SQLite, one database file, no server.
func TestConformanceSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	var once sync.Once
	queuetest.Run(t, queuetest.Config{
		Open: func(t *testing.T, ns string) stripewebhook.Queue {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
			if err != nil {
				t.Fatal(err)
			}
			q, err := rivqueue.NewSQLite(db, rivqueue.WithName(strings.ToLower(ns)), rivqueue.WithVisibilityTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			once.Do(func() {
				if err := q.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				q.Close(ctx)
				db.Close()
			})
			return q
		},
		AckWait:    time.Second,
		Redelivery: 45 * time.Second,
	})
}

// ExampleNew runs against the server when there is one: the jobs of the
// queue it names are deleted before and after.
func TestExampleNew(t *testing.T) {
	url := dsn(t)
	t.Setenv("DATABASE_URL", url)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("%s cannot be reached: %v", envURL, err)
	}
	defer conn.Close(context.Background())
	clean := func() {
		// river_job does not exist before the first Migrate.
		conn.Exec(context.Background(), `DELETE FROM river_job WHERE queue = 'billing'`)
	}
	clean()
	defer clean()
	ExampleNew()
}
