package stripewebhook_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// The whole endpoint: register callbacks, build the handler, mount it.
func Example() {
	d := stripewebhook.NewDispatcher()
	stripewebhook.On(d, "invoice.paid", func(ctx context.Context, e *stripewebhook.Event, inv *stripe.Invoice) error {
		fmt.Printf("invoice %s paid: %d %s\n", inv.ID, inv.AmountPaid, inv.Currency)
		return nil // an error makes Stripe retry
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", h)

	// What Stripe would send:
	req := webhooktest.NewRequest(exampleT{}, "/webhook", webhooktest.Fixture(exampleT{}, "invoice.paid"), "whsec_example")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// invoice in_1SbQkR2eZvKYlo2CiNvOiCe1 paid: 0 usd
	// 200
}

// Verify on its own, for code that already holds the raw body.
func ExampleVerifier_Verify() {
	payload := []byte(`{"id":"evt_1","object":"event","type":"balance.available"}`)
	header := fixture.Header(payload, time.Unix(1764000000, 0), "whsec_current")

	v, err := stripewebhook.NewVerifier(
		[]stripewebhook.Secret{stripewebhook.NewSecret("current", "whsec_current"), stripewebhook.NewSecret("previous", "whsec_previous")},
		stripewebhook.WithClock(func() time.Time { return time.Unix(1764000060, 0) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	ver, err := v.Verify(payload, header)
	fmt.Println(ver.Secret, err)

	_, err = v.Verify([]byte(`{"id":"evt_forged"}`), header)
	fmt.Println(err == stripewebhook.ErrNoValidSignature)
	// Output:
	// current <nil>
	// true
}

// Routing by exact type, by prefix, for every event, and for the rest.
func ExampleDispatcher() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event) error {
		fmt.Println("subscription changed:", e.Type)
		return nil
	})
	d.Fallback(func(ctx context.Context, e *stripewebhook.Event) error {
		fmt.Println("no callback for", e.Type)
		return nil
	})
	for _, typ := range []string{"customer.subscription.deleted", "charge.refunded"} {
		d.Dispatch(context.Background(), &stripewebhook.Event{ID: "evt_1", Type: stripe.EventType(typ)})
	}
	// Output:
	// subscription changed: customer.subscription.deleted
	// no callback for charge.refunded
}

// The endpoint's enabled_events, so that Stripe sends only what is handled.
func ExampleDispatcher_EnabledEvents() {
	d := stripewebhook.NewDispatcher()
	nop := func(context.Context, *stripewebhook.Event) error { return nil }
	d.HandleFunc("checkout.session.completed", nop)
	d.HandleFunc("invoice.paid", nop)
	fmt.Println(d.EnabledEvents())
	// Output: [checkout.session.completed invoice.paid]
}

// Events from a queue or a replay go straight to Dispatch.
func ExampleParseEvent() {
	d := stripewebhook.NewDispatcher()
	stripewebhook.On(d, "payout.failed", func(ctx context.Context, e *stripewebhook.Event, p *stripe.Payout) error {
		fmt.Println(e.Account, p.FailureCode)
		return nil
	})
	e, err := stripewebhook.ParseEvent(webhooktest.Fixture(exampleT{}, "payout.failed"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Dispatch(context.Background(), e))
	// Output:
	// acct_1SbCdEfGhIjKlMnO account_closed
	// <nil>
}

// A Connect platform's live endpoint also receives its connected accounts'
// test events; acknowledge and drop them.
func ExampleWithLivemode() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("account.updated", func(ctx context.Context, e *stripewebhook.Event) error { return nil })
	_, err := stripewebhook.NewHandler(d,
		[]stripewebhook.Secret{stripewebhook.NewSecret("connect", "whsec_connect_endpoint")},
		stripewebhook.WithLivemode(true))
	fmt.Println(err)
	// Output: <nil>
}

// exampleT lets examples call webhooktest helpers, which take the test's
// testing.TB; a real test passes its *testing.T.
type exampleT struct{ testing.TB }

func (exampleT) Helper()                           {}
func (exampleT) Cleanup(func())                    {} // the example's fake API lives until the process ends
func (exampleT) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }

// Secrets read from the environment: a comma-separated list while one is
// rolled; a value that cannot be an endpoint secret is refused, by name.
func ExampleSecrets() {
	secrets := stripewebhook.Secrets("whsec_new, whsec_old\n")
	fmt.Println(secrets)

	d := stripewebhook.NewDispatcher()
	d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
	_, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("sk_test_51AbCdEf"))
	fmt.Println(err)
	// Output:
	// [Secret(#1) Secret(#2)]
	// stripewebhook: invalid endpoint secret: secret "#1" is a secret API key (sk_…/rk_…), not the endpoint's signing secret (whsec_…)
}

// A typed callback that also sees what changed.
func ExampleOnPrevious() {
	d := stripewebhook.NewDispatcher()
	stripewebhook.OnPrevious(d, "customer.subscription.updated", func(ctx context.Context, e *stripewebhook.Event, sub, prev *stripe.Subscription) error {
		fmt.Printf("%s: %s → %s\n", sub.ID, prev.Status, sub.Status)
		return nil
	})
	h, _ := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"))
	payload := webhooktest.Fixture(exampleT{}, "customer.subscription.updated",
		fixture.ObjectField("status", "past_due"),
		fixture.PreviousAttributes(map[string]any{"status": "active"}))
	fmt.Println(h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), "whsec_example")))
	// Output:
	// sub_1SbQkR2eZvKYlo2CsUbScR1p: active → past_due
	// <nil>
}

// A type newer than stripe-go v82, allowed by name: every other pattern is
// still checked for typos.
func ExampleAllowTypes() {
	d := stripewebhook.NewDispatcher(stripewebhook.AllowTypes("invoice.brand_new_event"))
	nop := func(context.Context, *stripewebhook.Event) error { return nil }
	fmt.Println(d.HandleFunc("invoice.brand_new_event", nop))
	fmt.Println(d.HandleFunc("invoice.payed", nop))
	// Output:
	// <nil>
	// stripewebhook: unknown event type: "invoice.payed" (a typo? AllowTypes accepts types newer than stripe-go)
}

// Thin events from an event destination: the callback gets the full event,
// fetched once with the client given to the dispatcher, and the object the
// event is about. webhooktest's fake API stands in for Stripe's here; in
// production: stripe.NewClient(os.Getenv("STRIPE_API_KEY")).
func ExampleOnThin() {
	api := webhooktest.NewStripeAPI(exampleT{})
	d := stripewebhook.NewDispatcher(stripewebhook.WithClient(api.Client()))
	stripewebhook.OnThin(d, "v1.billing.meter.error_report_triggered", func(ctx context.Context, e *stripewebhook.Event, full *stripe.V1BillingMeterErrorReportTriggeredEvent) error {
		meter, err := stripewebhook.FetchRelated[stripe.BillingMeter](ctx, e)
		if err != nil {
			return err // Stripe retries
		}
		fmt.Printf("%s event: meter %q has %d errors\n", e.Kind, meter.EventName, full.Data.Reason.ErrorCount)
		return nil
	})
	h, _ := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"))

	payload := webhooktest.Fixture(exampleT{}, "v1.billing.meter.error_report_triggered")
	fmt.Println(h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), "whsec_example")))
	// Output:
	// thin event: meter "api_calls" has 1 errors
	// <nil>
}

// An event that arrives another way than a signed delivery (here a payload
// from a bus the application trusts) goes through the same dedup store as
// the webhook, so that it runs once whichever way comes first.
func ExampleHandler_Deliver() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		fmt.Println("ran", e.ID)
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"))
	if err != nil {
		log.Fatal(err)
	}
	payload, _ := fixture.Load("invoice.paid", fixture.ID("evt_1"))
	e, err := stripewebhook.ParseEvent(payload)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stripewebhook.StatusCode(h.Deliver(context.Background(), e)))

	// The same event by webhook, later: a duplicate.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(exampleT{}, "/webhook", payload, "whsec_example"))
	fmt.Println(rec.Code)
	// Output:
	// ran evt_1
	// 200
	// 200
}

// A state callback sees only the newest snapshot: the subscription's older
// "trialing" update, delivered after its "past_due" one, is skipped, while
// an action callback still sees both.
func ExampleOnLatest() {
	d := stripewebhook.NewDispatcher()
	stripewebhook.OnLatest(d, "customer.subscription.updated", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
		fmt.Println("state:", sub.ID, sub.Status) // save it: it is never older than what was saved
		return nil
	})
	stripewebhook.On(d, "customer.subscription.updated", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
		fmt.Println("action: event", e.ID) // notify, audit: every event
		return nil
	})
	h, _ := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	newer := webhooktest.Fixture(exampleT{}, "customer.subscription.updated", fixture.ID("evt_newer"), fixture.Created(1764100000), fixture.ObjectField("status", "past_due"))
	older := webhooktest.Fixture(exampleT{}, "customer.subscription.updated", fixture.ID("evt_older"), fixture.Created(1764000000), fixture.ObjectField("status", "trialing"))
	for _, payload := range [][]byte{newer, older} {
		err := h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), "whsec_example"))
		fmt.Println("answered", stripewebhook.StatusCode(err))
	}
	// Output:
	// state: sub_1SbQkR2eZvKYlo2CsUbScR1p past_due
	// action: event evt_newer
	// answered 200
	// action: event evt_older
	// answered 200
}
