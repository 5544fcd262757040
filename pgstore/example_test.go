package pgstore_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/pgstore"
)

// Replicas sharing one PostgreSQL table run each event once: here the
// same delivery arrives twice and its callback runs once.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cmp.Or(os.Getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // the caller owns the pool
	store, err := pgstore.New(pool, pgstore.WithName("billing_stripe_dedup"))
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // or store.Schema() in your migrations
		log.Fatal(err)
	}

	runs := 0
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		runs++
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithDedup(store))
	if err != nil {
		log.Fatal(err)
	}
	payload, err := fixture.Load("invoice.paid")
	if err != nil {
		log.Fatal(err)
	}
	for range 2 { // Stripe delivers at least once
		err := h.Handle(ctx, payload, fixture.Header(payload, time.Now(), "whsec_example"))
		fmt.Println("answered", stripewebhook.StatusCode(err))
	}
	fmt.Println("callback runs:", runs)
}

// ExampleNew runs against the server when there is one: the table it
// names is dropped before and after.
func TestExampleNew(t *testing.T) {
	url := dsn(t)
	t.Setenv("DATABASE_URL", url)
	p := pool(t, url)
	clean := func() {
		if _, err := p.Exec(context.Background(), `DROP TABLE IF EXISTS billing_stripe_dedup, billing_stripe_dedup_state`); err != nil {
			t.Fatalf("%s cannot be reached: %v", envURL, err)
		}
	}
	clean()
	defer clean()
	ExampleNew()
}
