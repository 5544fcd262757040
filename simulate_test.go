package stripewebhook_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// app is an application under Stripe's delivery semantics: it counts the
// successful runs of each event, and fails while failing is set.
type app struct {
	h         *stripewebhook.Handler
	failing   atomic.Bool
	failFirst atomic.Int32 // fail the next n runs
	slow      time.Duration
	mu        sync.Mutex
	done      map[string]int
	order     []string
}

func newApp(t *testing.T) *app {
	a := &app{done: map[string]int{}}
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error {
		time.Sleep(a.slow)
		if a.failing.Load() || a.failFirst.Add(-1) >= 0 {
			return errors.New("database down")
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.done[e.ID]++
		a.order = append(a.order, string(e.Type))
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	a.h = h
	return a
}

func (a *app) ranOnce(t *testing.T, ids ...string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		assert.Equal(t, 1, a.done[id], id)
	}
}

// Stripe retries what failed; the event runs once when the app is back.
func TestSimulatedRetries(t *testing.T) {
	a := newApp(t)
	s := webhooktest.NewSender(t, a.h, testSecret)
	a.failFirst.Store(2)
	r := s.Send(webhooktest.Fixture(t, "invoice.paid"))
	require.True(t, r.Delivered, "%v", r.Statuses)
	assert.Equal(t, []int{500, 500, 200}, r.Statuses)
	a.ranOnce(t, "evt_1SbQkR2eZvKYlo2C00000007")
}

// Duplicates, one after the other and at once: the app runs the event once,
// and every delivery ends with a 2xx (a 409 is retried).
func TestSimulatedDuplicates(t *testing.T) {
	a := newApp(t)
	a.slow = 3 * time.Millisecond
	s := webhooktest.NewSender(t, a.h, testSecret, webhooktest.Retries(0, 5*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond))
	p := webhooktest.Fixture(t, "payment_intent.succeeded")
	for _, r := range append(s.SendTimes(p, 3), s.SendConcurrently(webhooktest.Fixture(t, "charge.succeeded"), 10)...) {
		assert.True(t, r.Delivered, "%v", r.Statuses)
	}
	a.ranOnce(t, "evt_1SbQkR2eZvKYlo2C00000000", "evt_1SbQkR2eZvKYlo2C00000003")
}

// A checkout flow delivered out of order: every event runs once, in the
// order it arrived.
func TestSimulatedFlowOutOfOrder(t *testing.T) {
	flow := webhooktest.SubscriptionFlow(t)
	for name, order := range map[string]fixture.Order{"reversed": fixture.Reversed, "shuffled": fixture.Shuffled(7)} {
		t.Run(name, func(t *testing.T) {
			a := newApp(t)
			s := webhooktest.NewSender(t, a.h, testSecret)
			for _, r := range s.SendAll(flow, order) {
				assert.True(t, r.Delivered)
			}
			assert.Len(t, a.done, len(flow))
			assert.NotEqual(t, []string{"checkout.session.completed", "customer.subscription.created", "invoice.created",
				"invoice.finalized", "invoice.paid", "customer.subscription.updated", "customer.subscription.trial_will_end",
				"invoice.payment_failed", "customer.subscription.updated", "customer.subscription.deleted"}, a.order)
		})
	}
}

// An endpoint that keeps failing is disabled; once the app is fixed,
// Reconcile recovers every event Stripe could not deliver, once each.
func TestSimulatedDisabledEndpointRecovered(t *testing.T) {
	a := newApp(t)
	s := webhooktest.NewSender(t, a.h, testSecret, webhooktest.DisableAfter(2))
	a.failing.Store(true)
	flow := webhooktest.SubscriptionFlow(t)
	results := s.SendAll(flow, fixture.InOrder)
	assert.False(t, results[0].Delivered || results[1].Delivered)
	assert.True(t, results[2].Disabled, "disabled after two failed events")
	a.failing.Store(false)
	// The flow spans three weeks: list all of it (the default is Stripe's three days of retries).
	r, err := a.h.Reconcile(context.Background(), s.API().Client(), stripewebhook.ReconcileOptions{Since: time.Now().AddDate(0, 0, -30)})
	require.NoError(t, err)
	assert.Equal(t, len(flow), r.Ran)
	assert.Len(t, a.done, len(flow))
	assert.Equal(t, "checkout.session.completed", a.order[0], "recovered oldest first")
}

// The sender drives a running server too.
func TestSimulatedOverHTTP(t *testing.T) {
	a := newApp(t)
	srv := httptest.NewServer(a.h)
	defer srv.Close()
	s := webhooktest.NewSender(t, webhooktest.HTTPTarget(srv.URL), testSecret)
	a.failFirst.Store(1)
	r := s.Send(webhooktest.Fixture(t, "customer.created"))
	assert.Equal(t, []int{500, 200}, r.Statuses)
	a.ranOnce(t, "evt_1SbQkR2eZvKYlo2C00000028")
	srv.Close()
	assert.False(t, s.Send(webhooktest.Fixture(t, "customer.updated")).Delivered, "a server that is down is a failed attempt")
}
