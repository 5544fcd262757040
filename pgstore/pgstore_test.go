package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/pgstore"
)

// envURL names the server the tests use; scripts/test.sh sets it.
const envURL = "STRIPEWEBHOOK_POSTGRES_URL"

func dsn(t *testing.T) string {
	return dedupstoretest.ServerURL(t, envURL, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

func pool(t *testing.T, dsn string) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("%s: %v", envURL, err)
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func newStore(t *testing.T, p *pgxpool.Pool) *pgstore.Store {
	s, err := pgstore.New(p, pgstore.WithName("stripewebhook_dedup_test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("%s=%s cannot be reached or migrated: %v", envURL, os.Getenv(envURL), err)
	}
	return s
}

func TestConformance(t *testing.T) {
	d := dsn(t)
	p := pool(t, d)
	u, err := url.Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	dedupstoretest.Run(t, dedupstoretest.Config{
		New:     func(t *testing.T) stripewebhook.Store { return newStore(t, p) },
		Backend: u.Host,
		NewVia: func(t *testing.T, addr string) stripewebhook.Store {
			v := *u
			v.Host = addr
			return newStore(t, pool(t, v.String()))
		},
	})
}

func TestCleanupAndSchema(t *testing.T) {
	p := pool(t, dsn(t))
	s := newStore(t, p)
	ctx := context.Background()
	key := dedupstoretest.Key(t)
	c, err := s.Claim(ctx, key, time.Minute)
	if err != nil || c.Status != stripewebhook.Claimed {
		t.Fatalf("claim: %v %v", c, err)
	}
	if err := s.Complete(ctx, key, c.Token, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var completedAt *time.Time
	if err := p.QueryRow(ctx, `SELECT completed_at FROM stripewebhook_dedup_test WHERE key = $1`, key).Scan(&completedAt); err != nil || completedAt == nil {
		t.Fatalf("completed_at: %v %v", completedAt, err)
	}
	time.Sleep(50 * time.Millisecond)
	n, err := s.Cleanup(ctx)
	if err != nil || n < 1 {
		t.Fatalf("cleanup: %d %v", n, err)
	}
	var count int
	p.QueryRow(ctx, `SELECT count(*) FROM stripewebhook_dedup_test WHERE key = $1`, key).Scan(&count)
	if count != 0 {
		t.Fatal("expired row not cleaned up")
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate is not idempotent: %v", err)
	}
}

func TestInvalidConfig(t *testing.T) {
	// A pool that never connects until used.
	p := pool(t, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	for _, name := range []string{"", "a;drop table x", "a.b.c", `"x"`} {
		_, err := pgstore.New(p, pgstore.WithName(name))
		if !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), "pgstore.WithName") {
			t.Errorf("table %q: %v", name, err)
		}
	}
	if _, err := pgstore.New(p, pgstore.WithName("billing.stripe_dedup")); err != nil {
		t.Error(err)
	}
	if _, err := pgstore.New(nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Error("nil DB accepted")
	}
}

// Replicas starting together all migrate a fresh table at once: every
// Migrate succeeds (CREATE … IF NOT EXISTS alone fails with 23505 here).
func TestConcurrentMigrate(t *testing.T) {
	p := pool(t, dsn(t))
	ctx := context.Background()
	for round := range 5 {
		table := fmt.Sprintf("stripewebhook_migrate_%d_%d", time.Now().UnixNano()%1e9, round)
		t.Cleanup(func() { p.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+table+"_state") })
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := pgstore.New(p, pgstore.WithName(table))
				if err == nil {
					err = s.Migrate(ctx)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

func TestUnreachable(t *testing.T) {
	p := pool(t, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	s, _ := pgstore.New(p)
	if _, err := s.Claim(context.Background(), "evt_1", time.Minute); err == nil {
		t.Fatal("claim on a closed port succeeded")
	}
}

// On a transaction, claims are plain statements that commit (or roll back)
// with it.
func TestStoreOnTransaction(t *testing.T) {
	p := pool(t, dsn(t))
	newStore(t, p) // migrated
	ctx := context.Background()
	tx, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	s, err := pgstore.New(tx, pgstore.WithName("stripewebhook_dedup_test"))
	if err != nil {
		t.Fatal(err)
	}
	key := dedupstoretest.Key(t)
	if c, err := s.Claim(ctx, key, time.Minute); err != nil || c.Status != stripewebhook.Claimed {
		t.Fatalf("claim in a transaction: %v %v", c, err)
	}
	if c, err := s.Claim(ctx, key, time.Minute); err != nil || c.Status != stripewebhook.InProgress {
		t.Fatalf("second claim in the transaction: %v %v", c, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := newStore(t, p).Claim(ctx, key, time.Minute); err != nil || c.Status != stripewebhook.Claimed {
		t.Fatalf("after the rollback: %v %v", c, err)
	}
}
