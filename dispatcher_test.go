package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
)

func event(typ string) *Event {
	return &Event{ID: "evt_1", Type: stripe.EventType(typ), Object: []byte(`{"id":"in_1","object":"invoice","amount_paid":4200}`)}
}

// recorder returns a callback that appends name to *calls.
func recorder(calls *[]string, name string) Callback {
	return func(context.Context, *Event) error { *calls = append(*calls, name); return nil }
}

func TestDispatchOrder(t *testing.T) {
	var calls []string
	d := NewDispatcher()
	require.NoError(t, d.HandleFunc("*", recorder(&calls, "all")))
	require.NoError(t, d.HandleFunc("customer.subscription.*", recorder(&calls, "prefix")))
	require.NoError(t, d.HandleFunc("customer.subscription.updated", recorder(&calls, "exact1")))
	require.NoError(t, d.HandleFunc("customer.*", recorder(&calls, "prefix2")))
	require.NoError(t, d.HandleFunc("customer.subscription.updated", recorder(&calls, "exact2")))
	require.NoError(t, d.Fallback(recorder(&calls, "fallback")))

	for _, tt := range []struct {
		typ  string
		want []string
	}{
		{"customer.subscription.updated", []string{"exact1", "exact2", "prefix", "prefix2", "all"}},
		{"customer.subscription.deleted", []string{"prefix", "prefix2", "all"}},
		{"customer.created", []string{"prefix2", "all"}},
		{"invoice.paid", []string{"all", "fallback"}},
		{"brand_new.event", []string{"all", "fallback"}},
	} {
		calls = nil
		require.NoError(t, d.Dispatch(context.Background(), event(tt.typ)))
		assert.Equal(t, tt.want, calls, tt.typ)
	}
	assert.True(t, d.Handles("customer.created"))
	assert.False(t, d.Handles("invoice.paid"))
}

func TestDispatchFirstErrorStops(t *testing.T) {
	var calls []string
	boom := errors.New("boom")
	d := NewDispatcher()
	d.HandleFunc("invoice.paid", recorder(&calls, "first"))
	d.HandleFunc("invoice.paid", func(context.Context, *Event) error { calls = append(calls, "fails"); return boom })
	d.HandleFunc("invoice.paid", recorder(&calls, "never"))
	d.HandleFunc("*", recorder(&calls, "never either"))
	err := d.Dispatch(context.Background(), event("invoice.paid"))
	require.ErrorIs(t, err, boom)
	assert.Equal(t, []string{"first", "fails"}, calls)
}

func TestDispatchRecoversPanic(t *testing.T) {
	var calls []string
	d := NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *Event) error { panic("nil map") })
	d.HandleFunc("invoice.paid", recorder(&calls, "after"))
	err := d.Dispatch(context.Background(), event("invoice.paid"))
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "nil map", pe.Value)
	assert.Contains(t, string(pe.Stack), "dispatcher_test.go")
	assert.Empty(t, calls)

	d2 := NewDispatcher()
	cause := errors.New("cause")
	d2.HandleFunc("invoice.paid", func(context.Context, *Event) error { panic(cause) })
	require.ErrorIs(t, d2.Dispatch(context.Background(), event("invoice.paid")), cause)
}

func TestRegistrationErrors(t *testing.T) {
	nop := func(context.Context, *Event) error { return nil }
	for _, tt := range []struct {
		pattern string
		want    error
	}{
		{"invoice.payed", ErrUnknownEventType},
		{"invoices.*", ErrUnknownEventType},
		{"", ErrInvalidPattern},
		{"invoice.*.paid", ErrInvalidPattern},
		{"*.paid", ErrInvalidPattern},
		{".*", ErrInvalidPattern},
		{"invoice..*", ErrInvalidPattern},
		{"invoice paid", ErrInvalidPattern},
	} {
		t.Run(tt.pattern, func(t *testing.T) {
			d := NewDispatcher()
			require.ErrorIs(t, d.HandleFunc(tt.pattern, nop), tt.want)
			require.ErrorIs(t, d.Err(), tt.want, "kept for NewHandler")
			_, err := NewHandler(d, Secrets("whsec_x"))
			require.ErrorIs(t, err, tt.want, "start-up fails")
			require.ErrorIs(t, d.Dispatch(context.Background(), event("invoice.paid")), tt.want)
		})
	}
	d := NewDispatcher()
	require.ErrorIs(t, d.HandleFunc("invoice.paid", nil), ErrInvalidPattern)
	require.ErrorIs(t, d.Fallback(nil), ErrInvalidPattern)

	d = NewDispatcher(AllowUnknownTypes())
	require.NoError(t, d.HandleFunc("brand_new.event", nop))
	require.NoError(t, d.HandleFunc("brand_new.*", nop))
	require.NoError(t, d.Err())
}

func TestRegisterAfterStart(t *testing.T) {
	d := NewDispatcher()
	require.NoError(t, d.Dispatch(context.Background(), event("invoice.paid")))
	nop := func(context.Context, *Event) error { return nil }
	require.ErrorIs(t, d.HandleFunc("invoice.paid", nop), ErrDispatcherStarted)
	require.ErrorIs(t, d.Fallback(nop), ErrDispatcherStarted)
	require.NoError(t, d.Err(), "a late registration does not poison a running dispatcher")
}

func TestTypedCallback(t *testing.T) {
	d := NewDispatcher()
	var got []*stripe.Invoice
	On(d, "invoice.paid", func(_ context.Context, e *Event, inv *stripe.Invoice) error {
		got = append(got, inv)
		return nil
	})
	On(d, "invoice.paid", func(_ context.Context, e *Event, inv *stripe.Invoice) error {
		got = append(got, inv)
		return nil
	})
	require.NoError(t, d.Dispatch(context.Background(), event("invoice.paid")))
	require.Len(t, got, 2)
	assert.Equal(t, "in_1", got[0].ID)
	assert.Equal(t, int64(4200), got[0].AmountPaid)
	assert.Same(t, got[0], got[1], "decoded once per event")
}

func TestTypedCallbackMismatchAtRegistration(t *testing.T) {
	nop := func(context.Context, *Event, *stripe.Invoice) error { return nil }
	for _, tt := range []struct {
		pattern string
		ok      bool
	}{
		{"invoice.paid", true},
		{"invoice.*", true},
		{"customer.subscription.updated", false},
		{"customer.*", false}, // customer.subscription.* carry subscriptions
		{"*", false},
	} {
		t.Run(tt.pattern, func(t *testing.T) {
			d := NewDispatcher()
			err := On(d, tt.pattern, nop)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrObjectMismatch)
			assert.Contains(t, err.Error(), "*stripe.Invoice")
			assert.ErrorIs(t, d.Err(), ErrObjectMismatch, "recorded, so that NewHandler refuses to start")
		})
	}
	d := NewDispatcher()
	require.NoError(t, On(d, "customer.tax_id.created", func(context.Context, *Event, *stripe.TaxID) error { return nil }))
	require.NoError(t, On(d, "account.external_account.created", func(context.Context, *Event, *stripe.AccountExternalAccount) error { return nil }))
	require.NoError(t, On(d, "charge.dispute.*", func(context.Context, *Event, *stripe.Dispute) error { return nil }))
	require.NoError(t, On(d, "checkout.session.completed", func(context.Context, *Event, *stripe.CheckoutSession) error { return nil }))
}

func TestTypedCallbackMismatchAtDelivery(t *testing.T) {
	// A type stripe-go does not know: its object is checked when it comes.
	d := NewDispatcher(AllowTypes("invoice.brand_new"))
	ran := false
	require.NoError(t, On(d, "invoice.brand_new", func(context.Context, *Event, *stripe.PaymentIntent) error { ran = true; return nil }))
	e := event("invoice.brand_new")
	err := d.Dispatch(context.Background(), e)
	require.ErrorIs(t, err, ErrObjectMismatch)
	var cbErr *CallbackError
	require.ErrorAs(t, err, &cbErr)
	assert.Contains(t, err.Error(), `"invoice"`)
	assert.Contains(t, err.Error(), "PaymentIntent")
	assert.False(t, ran)
}

func TestAllowTypesOneByOne(t *testing.T) {
	known := eventtypes.Known // a copy of the array
	defer func() { assert.Equal(t, known, eventtypes.Known, "the known types are never written") }()
	nop := func(context.Context, *Event) error { return nil }
	d := NewDispatcher(AllowTypes("invoice.brand_new", "v9.future.thing"))
	require.NoError(t, d.HandleFunc("invoice.brand_new", nop))
	require.NoError(t, d.HandleFunc("v9.future.*", nop), "a prefix that only an allowed type matches")
	require.ErrorIs(t, d.HandleFunc("invoice.payed", nop), ErrUnknownEventType, "typos are still caught")
	require.ErrorIs(t, d.HandleFunc("invoce.*", nop), ErrUnknownEventType)
	require.NoError(t, d.HandleFunc("invoice.*", nop))
	assert.Contains(t, d.EnabledEvents(), "v9.future.thing")
	assert.Contains(t, d.EnabledEvents(), "invoice.brand_new", "a prefix covers the allowed types it matches")
	assert.True(t, d.Handles("invoice.brand_new"))
}

func TestOnPrevious(t *testing.T) {
	d := NewDispatcher()
	var got, prev *stripe.Subscription
	calls := 0
	require.NoError(t, OnPrevious(d, "customer.subscription.*", func(_ context.Context, _ *Event, s, p *stripe.Subscription) error {
		calls++
		got, prev = s, p
		return nil
	}))
	e := &Event{ID: "evt_1", Type: "customer.subscription.updated",
		Object:             []byte(`{"id":"sub_1","object":"subscription","status":"active","cancel_at_period_end":true}`),
		PreviousAttributes: []byte(`{"status":"trialing","cancel_at_period_end":false}`)}
	require.NoError(t, d.Dispatch(context.Background(), e))
	require.NotNil(t, prev)
	assert.Equal(t, stripe.SubscriptionStatusActive, got.Status)
	assert.Equal(t, stripe.SubscriptionStatusTrialing, prev.Status)
	assert.False(t, prev.CancelAtPeriodEnd)

	e = &Event{ID: "evt_2", Type: "customer.subscription.created", Object: []byte(`{"id":"sub_1","object":"subscription"}`)}
	require.NoError(t, d.Dispatch(context.Background(), e))
	assert.Nil(t, prev, "no previous_attributes on a creation")
	assert.Equal(t, 2, calls)
}

func TestCallbackErrorKeepsTheCause(t *testing.T) {
	d := NewDispatcher()
	cause := fmt.Errorf("wrapped: %w", ErrInvalidPayload)
	d.HandleFunc("invoice.paid", func(context.Context, *Event) error { return cause })
	err := d.Dispatch(context.Background(), event("invoice.paid"))
	var cbErr *CallbackError
	require.ErrorAs(t, err, &cbErr)
	assert.Equal(t, "invoice.paid", cbErr.Type)
	assert.ErrorIs(t, err, ErrInvalidPayload, "the callback's own error stays reachable")
	assert.Equal(t, 500, StatusCode(err), "but it is the callback's failure")
}

func TestDecodeObjectNames(t *testing.T) {
	for _, tt := range []struct {
		object string
		check  func(*Event) error
	}{
		{"checkout.session", func(e *Event) error { _, err := Decode[stripe.CheckoutSession](e); return err }},
		{"payment_intent", func(e *Event) error { _, err := Decode[stripe.PaymentIntent](e); return err }},
		{"subscription", func(e *Event) error { _, err := Decode[stripe.Subscription](e); return err }},
		{"bank_account", func(e *Event) error { _, err := Decode[stripe.AccountExternalAccount](e); return err }},
		{"anything", func(e *Event) error { _, err := Decode[struct{ ID string }](e); return err }},
	} {
		e := &Event{Object: []byte(`{"id":"x_1","object":"` + tt.object + `"}`)}
		require.NoError(t, tt.check(e), tt.object)
	}
	e := &Event{ID: "evt_1", Object: []byte(`{"id":"x_1","object":"invoice","amount_paid":"lots"}`)}
	_, err := Decode[stripe.Invoice](e)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "evt_1")
}

func TestEnabledEvents(t *testing.T) {
	nop := func(context.Context, *Event) error { return nil }
	d := NewDispatcher()
	d.HandleFunc("payment_intent.succeeded", nop)
	d.HandleFunc("customer.subscription.*", nop)
	d.HandleFunc("payment_intent.succeeded", nop)
	got := d.EnabledEvents()
	assert.Contains(t, got, "payment_intent.succeeded")
	assert.Contains(t, got, "customer.subscription.updated")
	assert.Contains(t, got, "customer.subscription.trial_will_end")
	assert.NotContains(t, got, "customer.created")
	assert.IsNonDecreasing(t, got)
	for _, typ := range got {
		assert.True(t, strings.HasPrefix(typ, "customer.subscription.") || typ == "payment_intent.succeeded")
	}
	assert.False(t, d.CatchAll())
	d.HandleFunc("*", nop)
	assert.Equal(t, got, d.EnabledEvents(), "a logging catch-all does not hide the handled types")
	assert.True(t, d.CatchAll())

	f := NewDispatcher()
	f.HandleFunc("invoice.paid", nop)
	f.Fallback(nop)
	assert.Equal(t, []string{"invoice.paid"}, f.EnabledEvents())
	assert.True(t, f.CatchAll())
}

func TestDispatchConcurrent(t *testing.T) {
	d := NewDispatcher()
	var mu sync.Mutex
	n := 0
	On(d, "invoice.*", func(context.Context, *Event, *stripe.Invoice) error { mu.Lock(); n++; mu.Unlock(); return nil })
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				assert.NoError(t, d.Dispatch(context.Background(), event("invoice.paid")))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1000, n)
}
