package amqpqueue_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/amqpqueue"
	"github.com/stripewebhook/stripewebhook/fixture"
)

// The asynchronous mode on RabbitMQ: the handler answers 200 once the
// broker has confirmed the event, and a Worker, here or in another
// process, runs the callback.
func ExampleNew() {
	ctx := context.Background()
	// The Queue dials, and dials again after an outage: it closes what it dialled.
	q, err := amqpqueue.New(ctx, amqpqueue.Dial(cmp.Or(os.Getenv("AMQP_URL"), "amqp://guest:guest@127.0.0.1:5672/")),
		amqpqueue.WithName("billing"))
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

// ExampleNew runs against the broker when there is one: the queues it
// names are deleted before and after.
func TestExampleNew(t *testing.T) {
	url := amqpURL(t)
	t.Setenv("AMQP_URL", url)
	clean := func() {
		if q, err := amqpqueue.New(context.Background(), amqpqueue.Dial(url), amqpqueue.WithName("billing")); err == nil {
			q.Delete(context.Background())
		}
	}
	clean()
	defer clean()
	ExampleNew()
}
