package stripewebhook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// reconcileEnv is a handler with callbacks for invoice.paid and every
// customer.* type (more than 20 types: two list requests), the fake API,
// and a record of what ran.
type reconcileEnv struct {
	h    *stripewebhook.Handler
	api  *webhooktest.StripeAPI
	mu   sync.Mutex
	ran  []string
	fail map[string]bool
}

func newReconcileEnv(t *testing.T, now time.Time) *reconcileEnv {
	env := &reconcileEnv{api: webhooktest.NewStripeAPI(t), fail: map[string]bool{}}
	d := stripewebhook.NewDispatcher()
	record := func(_ context.Context, e *stripewebhook.Event) error {
		env.mu.Lock()
		defer env.mu.Unlock()
		if env.fail[e.ID] {
			return errors.New("callback failed")
		}
		env.ran = append(env.ran, e.ID)
		return nil
	}
	require.NoError(t, d.HandleFunc("invoice.paid", record))
	require.NoError(t, d.HandleFunc("customer.*", record))
	require.Greater(t, len(d.EnabledEvents()), stripewebhook.MaxTypesPerList)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
		stripewebhook.WithClock(func() time.Time { return now }), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	env.h = h
	return env
}

func (env *reconcileEnv) event(t *testing.T, name, id string, created time.Time, delivered bool, edits ...fixture.Edit) []byte {
	p := webhooktest.Fixture(t, name, append([]fixture.Edit{fixture.ID(id), fixture.Created(created.Unix())}, edits...)...)
	env.api.AddListedEvent(t, p, delivered)
	return p
}

// Replay against a list API holding events delivered and not, inside and
// outside the window, some already processed by the endpoint: each missed
// event runs once, in order, and nothing else.
func TestReconcileRunsEachMissedEventOnce(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	env := newReconcileEnv(t, now)
	ctx := context.Background()
	var missed []string
	for i := range 130 { // more than a page
		id := fmt.Sprintf("evt_missed_%03d", i)
		env.event(t, "invoice.paid", id, now.Add(-time.Duration(130-i)*time.Minute), false)
		missed = append(missed, id)
	}
	env.event(t, "customer.updated", "evt_missed_customer", now.Add(-time.Minute), false) // in the second group of types
	missed = append(missed, "evt_missed_customer")
	env.event(t, "invoice.paid", "evt_delivered", now.Add(-time.Hour), true)
	env.event(t, "invoice.paid", "evt_too_old", now.Add(-100*time.Hour), false)
	env.event(t, "charge.succeeded", "evt_unhandled_type", now.Add(-time.Hour), false)
	done := env.event(t, "invoice.paid", "evt_already_processed", now.Add(-30*time.Minute), false)
	require.NoError(t, env.h.Handle(ctx, done, fixture.Header(done, now, testSecret)), "processed live before the outage ended")
	env.event(t, "invoice.paid", "evt_connected", now.Add(-10*time.Minute), false, fixture.Account("acct_1"))
	missed = append(missed, "evt_connected")
	env.ran = nil

	r, err := env.h.Reconcile(ctx, env.api.Client(), stripewebhook.ReconcileOptions{Accounts: []string{"acct_1"}})
	require.NoError(t, err)
	assert.Equal(t, len(missed), r.Ran)
	assert.Equal(t, 1, r.Skipped, "the event the endpoint had processed")
	assert.Zero(t, r.Failed)
	assert.ElementsMatch(t, missed, env.ran)
	var invoices []string // created a minute apart, named in that order
	for _, id := range env.ran {
		if strings.HasPrefix(id, "evt_missed_") && id != "evt_missed_customer" {
			invoices = append(invoices, id)
		}
	}
	assert.True(t, sort.StringsAreSorted(invoices), "oldest first")
	assert.Equal(t, now.Add(-time.Minute).Unix(), r.Cursor.After)

	var lists, connected int
	for _, req := range env.api.Requests() {
		if req.Path == "/v1/events" {
			lists++
			assert.Equal(t, "false", req.Query.Get("delivery_success"))
			assert.Equal(t, fmt.Sprint(now.Add(-72*time.Hour).Unix()), req.Query.Get("created[gte]"))
			n := 0
			for k := range req.Query {
				if strings.HasPrefix(k, "types[") {
					n++
				}
			}
			assert.LessOrEqual(t, n, stripewebhook.MaxTypesPerList)
			if req.StripeAccount == "acct_1" {
				connected++
			}
		}
	}
	assert.GreaterOrEqual(t, lists, 4, "two groups of types, two pages, and the connected account")
	assert.Positive(t, connected)

	// Stripe's own late retry of a replayed event is acknowledged, not run.
	late := webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_missed_007"))
	require.NoError(t, env.h.Handle(ctx, late, fixture.Header(late, now, testSecret)))
	// A second run from the cursor lists the last minute only, and runs nothing.
	before := len(env.ran)
	r2, err := env.h.Reconcile(ctx, env.api.Client(), stripewebhook.ReconcileOptions{Cursor: r.Cursor, Accounts: []string{"acct_1"}})
	require.NoError(t, err)
	assert.Equal(t, before, len(env.ran))
	assert.Equal(t, 0, r2.Ran)
	assert.Equal(t, 2, r2.Listed, "only what was created at or after the cursor: the last minute's two")
	assert.Equal(t, 2, r2.Skipped)
}

// A failed event is reported, and the cursor stays before it so that the
// next run retries it.
func TestReconcileFailureHoldsTheCursor(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	env := newReconcileEnv(t, now)
	ctx := context.Background()
	env.event(t, "invoice.paid", "evt_a", now.Add(-3*time.Hour), false)
	env.event(t, "invoice.paid", "evt_b", now.Add(-2*time.Hour), false)
	env.event(t, "invoice.paid", "evt_c", now.Add(-time.Hour), false)
	env.fail["evt_b"] = true
	r, err := env.h.Reconcile(ctx, env.api.Client(), stripewebhook.ReconcileOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, r.Ran)
	assert.Equal(t, 1, r.Failed)
	require.Len(t, r.Failures, 1)
	assert.Equal(t, "evt_b", r.Failures[0].EventID)
	assert.Equal(t, now.Add(-2*time.Hour).Unix(), r.Cursor.After)

	delete(env.fail, "evt_b")
	r, err = env.h.Reconcile(ctx, env.api.Client(), stripewebhook.ReconcileOptions{Cursor: r.Cursor})
	require.NoError(t, err)
	assert.Equal(t, 1, r.Ran, "evt_b now")
	assert.Equal(t, 1, r.Skipped, "evt_c, done in the first run")
	assert.Equal(t, []string{"evt_a", "evt_c", "evt_b"}, env.ran)
}

func TestReconcileListingFails(t *testing.T) {
	env := newReconcileEnv(t, time.Now())
	_, err := env.h.Reconcile(context.Background(), nil, stripewebhook.ReconcileOptions{})
	require.ErrorIs(t, err, stripewebhook.ErrNoClient)
}
