package eventgridwebhook_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/eventgridwebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
)

// An Event Grid subscription's webhook endpoint, with no Stripe signing
// secret: the events come from the pinned destination, the delivery
// presents the shared secret.
func Example() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		fmt.Println("invoice paid:", e.ID, "through", e.Origin.Bus)
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations(fixture.Destination))
	if err != nil {
		log.Fatal(err)
	}
	os.Setenv("STRIPE_EVENTGRID_SECRET", "a-long-random-shared-secret")
	eg, err := eventgridwebhook.New(h, os.Getenv("STRIPE_EVENTGRID_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/eventgrid", eg)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What Event Grid posts.
	inner, _ := fixture.Load("invoice.paid", fixture.ID("evt_example_eventgrid"))
	ce, _ := fixture.EventGrid(inner, fixture.Destination, time.Now())
	res, err := http.Post(srv.URL+"/eventgrid?code=a-long-random-shared-secret", "application/cloudevents+json", strings.NewReader(string(ce)))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode)
	// Output:
	// invoice paid: evt_example_eventgrid through eventgrid
	// 200
}
