package rivqueue_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v82"
	_ "modernc.org/sqlite"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/rivqueue"
)

// openSQLite opens a queue in a new SQLite file; the returned function
// closes it and removes the file.
func openSQLite(ctx context.Context) (*rivqueue.Queue[*sql.Tx], func()) {
	dir, err := os.MkdirTemp("", "rivqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	q, err := rivqueue.NewSQLite(db)
	if err == nil {
		err = q.Migrate(ctx)
	}
	if err != nil {
		log.Fatal(err)
	}
	return q, func() { q.Close(ctx); db.Close(); os.RemoveAll(dir) }
}

// deliver hands a signed fixture to h as a delivery from Stripe would.
func deliver(ctx context.Context, h *stripewebhook.Handler, name, secret string) error {
	payload, err := fixture.Load(name)
	if err != nil {
		return err
	}
	return h.Handle(ctx, payload, fixture.Header(payload, time.Now(), secret))
}

// The asynchronous mode on PostgreSQL: the handler answers 200 once the
// event's River job is committed, and a Worker, here or in another
// process, runs the callback. EnqueueTx queues an event in a transaction
// of your own.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, cmp.Or(os.Getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close() // the caller owns the pool
	q, err := rivqueue.New(pool, rivqueue.WithName("billing"))
	if err != nil {
		log.Fatal(err)
	}
	if err := q.Migrate(ctx); err != nil { // River's tables, under an advisory lock
		log.Fatal(err)
	}
	defer q.Close(ctx)

	ran := make(chan struct{})
	d := stripewebhook.NewDispatcher()
	err = stripewebhook.On(d, "payment_intent.succeeded", func(ctx context.Context, e *stripewebhook.Event, pi *stripe.PaymentIntent) error {
		fmt.Println("worker: payment", pi.ID, "succeeded")
		close(ran)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	store := stripewebhook.NewMemoryStore(0) // replicas share one: pgstore on the same pool
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
	if err != nil {
		log.Fatal(err)
	}
	err = deliver(ctx, h, "payment_intent.succeeded", "whsec_example") // http.Handle("/webhook", h) in the application
	fmt.Println("handler: answered", stripewebhook.StatusCode(err))

	w, err := stripewebhook.NewWorker(h)
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- w.Run(runCtx) }()
	<-ran
	stop()
	<-stopped
}

// The asynchronous mode on one machine: the handler answers once the
// event's job is committed to the SQLite file, and a Worker runs the
// callback afterwards.
func ExampleNewSQLite() {
	ctx := context.Background()
	q, closeQueue := openSQLite(ctx)
	defer closeQueue()

	ran := make(chan struct{})
	d := stripewebhook.NewDispatcher()
	err := stripewebhook.On(d, "payment_intent.succeeded", func(ctx context.Context, e *stripewebhook.Event, pi *stripe.PaymentIntent) error {
		fmt.Println("worker: payment", pi.ID, "succeeded")
		close(ran)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	store := stripewebhook.NewMemoryStore(0) // shared by replicas in production: redisstore, pgstore
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
	if err != nil {
		log.Fatal(err)
	}

	err = deliver(ctx, h, "payment_intent.succeeded", "whsec_example")
	fmt.Println("handler: answered", stripewebhook.StatusCode(err))

	w, err := stripewebhook.NewWorker(h) // h's dispatcher, queue and store
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- w.Run(runCtx) }()
	<-ran
	stop() // on SIGTERM: Run takes no new event and lets those in flight finish
	<-stopped
	// Output:
	// handler: answered 200
	// worker: payment pi_123 succeeded
}

// A callback that keeps failing sends its event to the dead letter after
// the last attempt; once the cause is fixed, Replay runs it again.
func ExampleQueue_DeadLetters() {
	ctx := context.Background()
	q, closeQueue := openSQLite(ctx)
	defer closeQueue()

	var fixed atomic.Bool
	ran := make(chan struct{})
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		if !fixed.Load() {
			return errors.New("the ledger is down")
		}
		fmt.Println("worker: invoice recorded")
		close(ran)
		return nil
	})
	store := stripewebhook.NewMemoryStore(0)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
	if err != nil {
		log.Fatal(err)
	}
	w, err := stripewebhook.NewWorker(h,
		stripewebhook.WithMaxAttempts(2), stripewebhook.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- w.Run(runCtx) }()
	defer func() { stop(); <-stopped }()

	if err := deliver(ctx, h, "invoice.paid", "whsec_example"); err != nil {
		log.Fatal(err)
	}
	var dead []stripewebhook.DeadLetter
	for len(dead) == 0 {
		time.Sleep(50 * time.Millisecond)
		if dead, err = q.DeadLetters(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("dead letter: %s after %d attempts: %s\n", dead[0].ID, dead[0].Attempts, dead[0].Reason)

	fixed.Store(true)
	if err := q.Replay(ctx, dead[0].ID); err != nil {
		log.Fatal(err)
	}
	<-ran
	err = q.Replay(ctx, dead[0].ID)
	fmt.Println("replayed twice:", errors.Is(err, stripewebhook.ErrNoDeadLetter))
	// Output:
	// dead letter: evt_1SbQkR2eZvKYlo2C00000007 after 2 attempts: stripewebhook: callback for invoice.paid failed: the ledger is down
	// worker: invoice recorded
	// replayed twice: true
}
