package redisstore_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/redisstore"
)

// Replicas sharing one Redis run each event once: here the same delivery
// arrives twice and its callback runs once.
func ExampleNew() {
	ctx := context.Background()
	opt, err := redis.ParseURL(cmp.Or(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(opt)
	defer client.Close() // the caller owns the client
	store, err := redisstore.New(client, redisstore.WithName("billing:stripe-dedup"))
	if err != nil {
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

// ExampleNew runs against the server when there is one: the keys it names
// are deleted before and after.
func TestExampleNew(t *testing.T) {
	opt := options(t)
	t.Setenv("REDIS_URL", os.Getenv(envURL))
	c := client(t, opt)
	clean := func() {
		keys, err := c.Keys(context.Background(), "billing:stripe-dedup:*").Result()
		if err != nil {
			t.Fatalf("%s cannot be reached: %v", envURL, err)
		}
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	}
	clean()
	defer clean()
	ExampleNew()
}
