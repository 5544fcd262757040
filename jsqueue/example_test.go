package jsqueue_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/jsqueue"
)

// The asynchronous mode on JetStream: the handler answers 200 once the
// server has stored the event, and a Worker, here or in another process,
// runs the callback.
func ExampleNew() {
	ctx := context.Background()
	nc, err := nats.Connect(cmp.Or(os.Getenv("NATS_URL"), nats.DefaultURL), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close() // the caller owns the connection
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	q, err := jsqueue.New(ctx, js, jsqueue.WithName("BILLING"))
	if err != nil {
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
	store := stripewebhook.NewMemoryStore(0) // replicas share one: redisstore, pgstore
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
	if err != nil {
		log.Fatal(err)
	}
	// http.Handle("/webhook", h) in the application; here, one signed delivery.
	payload, err := fixture.Load("payment_intent.succeeded")
	if err != nil {
		log.Fatal(err)
	}
	err = h.Handle(ctx, payload, fixture.Header(payload, time.Now(), "whsec_example"))
	fmt.Println("handler: answered", stripewebhook.StatusCode(err))

	w, err := stripewebhook.NewWorker(h) // h's dispatcher, queue and store
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

// ExampleNew runs against the server when there is one: the streams it
// names are deleted before and after.
func TestExampleNew(t *testing.T) {
	url := natsURL(t)
	t.Setenv("NATS_URL", url)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	clean := func() {
		js.DeleteStream(context.Background(), "BILLING")
		js.DeleteStream(context.Background(), "BILLING_DEAD")
	}
	clean()
	defer clean()
	ExampleNew()
}
