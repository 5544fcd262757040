package stripewebhook_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// subscriptionEvent is a customer.subscription.updated of sub_guard with
// its own id, created and status.
func subscriptionEvent(t *testing.T, id string, created int64, status string) []byte {
	return webhooktest.Fixture(t, "customer.subscription.updated", fixture.ID(id), fixture.Created(created),
		fixture.ObjectField("id", "sub_guard"), fixture.ObjectField("status", status))
}

// stateRecorder is a dispatcher with a state callback and an action
// callback on customer.subscription.*, recording what each saw.
type stateRecorder struct {
	mu      sync.Mutex
	applied []string // the statuses the state callback applied
	actions []string // the event ids the action callback saw
	fail    map[string]bool
}

func (s *stateRecorder) dispatcher(t *testing.T, opts ...stripewebhook.DispatcherOption) *stripewebhook.Dispatcher {
	d := stripewebhook.NewDispatcher(opts...)
	require.NoError(t, stripewebhook.OnLatest(d, "customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail[e.ID] {
			return errors.New("the database is down")
		}
		s.applied = append(s.applied, string(sub.Status))
		return nil
	}))
	require.NoError(t, d.HandleFunc("customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.actions = append(s.actions, e.ID)
		return nil
	}))
	return d
}

func (s *stateRecorder) state() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.applied...), append([]string(nil), s.actions...)
}

// outcomes records each delivery's outcome.
type outcomes struct {
	mu  sync.Mutex
	got []stripewebhook.Outcome
}

func (o *outcomes) Start(ctx context.Context, _ stripewebhook.Op) context.Context { return ctx }
func (o *outcomes) End(_ context.Context, r *stripewebhook.Report) {
	if r.Op == stripewebhook.OpDelivery {
		o.mu.Lock()
		o.got = append(o.got, r.Outcome)
		o.mu.Unlock()
	}
}

func deliverSigned(t *testing.T, h *stripewebhook.Handler, payload []byte) error {
	return h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), testSecret))
}

func guardHandler(t *testing.T, d *stripewebhook.Dispatcher, opts ...stripewebhook.HandlerOption) *stripewebhook.Handler {
	opts = append([]stripewebhook.HandlerOption{stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), opts...)
	require.NoError(t, err)
	return h
}

// An older snapshot arriving after a newer one is stale: its state
// callback does not run, the action callback does, and it is acknowledged
// with the outcome stale.
func TestOnLatestSkipsStale(t *testing.T) {
	var rec stateRecorder
	var obs outcomes
	h := guardHandler(t, rec.dispatcher(t), stripewebhook.WithObserver(&obs))
	require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_new", 1_700_000_200, "active")))
	err := deliverSigned(t, h, subscriptionEvent(t, "evt_old", 1_700_000_100, "trialing"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, stripewebhook.StatusCode(err))
	require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_newer", 1_700_000_300, "past_due")))

	applied, actions := rec.state()
	assert.Equal(t, []string{"active", "past_due"}, applied, "the older snapshot is never applied")
	assert.Equal(t, []string{"evt_new", "evt_old", "evt_newer"}, actions, "actions run for every event")
	assert.Equal(t, []stripewebhook.Outcome{stripewebhook.OutcomeHandled, stripewebhook.OutcomeStale, stripewebhook.OutcomeHandled}, obs.got)
}

// A failed run leaves the mark where it was: Stripe's retry of the newer
// event still applies after an older one succeeded meanwhile.
func TestOnLatestFailedRunLeavesTheMark(t *testing.T) {
	rec := stateRecorder{fail: map[string]bool{"evt_new": true}}
	h := guardHandler(t, rec.dispatcher(t))
	newer := subscriptionEvent(t, "evt_new", 1_700_000_200, "active")
	err := deliverSigned(t, h, newer)
	assert.Equal(t, http.StatusInternalServerError, stripewebhook.StatusCode(err))
	require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_old", 1_700_000_100, "trialing")))
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	require.NoError(t, deliverSigned(t, h, newer), "Stripe's retry")
	applied, _ := rec.state()
	assert.Equal(t, []string{"trialing", "active"}, applied)
}

// A tie (the same second, another event) cannot be ordered: without a
// client it is applied; with WithRefetchStale, the state callback gets the
// object as Stripe has it now, and so does a stale event.
func TestOnLatestTies(t *testing.T) {
	t.Run("applied without a client", func(t *testing.T) {
		var rec stateRecorder
		h := guardHandler(t, rec.dispatcher(t))
		require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_a", 1_700_000_200, "active")))
		require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_b", 1_700_000_200, "past_due")))
		applied, _ := rec.state()
		assert.Equal(t, []string{"active", "past_due"}, applied)
	})
	t.Run("refetched with WithRefetchStale", func(t *testing.T) {
		api := webhooktest.NewStripeAPI(t)
		api.AddObject("/v1/subscriptions/sub_guard", []byte(`{"id":"sub_guard","object":"subscription","status":"canceled"}`))
		var rec stateRecorder
		var obs outcomes
		h := guardHandler(t, rec.dispatcher(t, stripewebhook.WithClient(api.Client())), stripewebhook.WithRefetchStale(), stripewebhook.WithObserver(&obs))
		require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_a", 1_700_000_200, "active")))
		require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_b", 1_700_000_200, "past_due")))
		require.NoError(t, deliverSigned(t, h, subscriptionEvent(t, "evt_c", 1_700_000_100, "trialing")))
		applied, _ := rec.state()
		assert.Equal(t, []string{"active", "canceled", "canceled"}, applied, "the tie and the stale event run with the current object")
		assert.Len(t, api.Requests(), 2, "one request per event in doubt, none for the newer one")
		assert.Equal(t, []stripewebhook.Outcome{stripewebhook.OutcomeHandled, stripewebhook.OutcomeHandled, stripewebhook.OutcomeHandled}, obs.got)
	})
}

// A synchronous delivery waits for its object's lock up to WithLockWait,
// then answers 409 and runs nothing; Stripe's retry then runs it once.
func TestOnLatestSynchronousLock(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var runs sync.Map
	d := stripewebhook.NewDispatcher()
	require.NoError(t, stripewebhook.OnLatest(d, "customer.subscription.updated", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
		n, _ := runs.LoadOrStore(e.ID, new(int))
		*n.(*int)++
		if e.ID == "evt_slow" {
			close(entered)
			<-release
		}
		return nil
	}))
	h := guardHandler(t, d, stripewebhook.WithLockWait(100*time.Millisecond))
	slow := make(chan error)
	go func() { slow <- deliverSigned(t, h, subscriptionEvent(t, "evt_slow", 1_700_000_100, "active")) }()
	<-entered
	other := subscriptionEvent(t, "evt_other", 1_700_000_200, "past_due")
	err := deliverSigned(t, h, other)
	assert.Equal(t, http.StatusConflict, stripewebhook.StatusCode(err), "%v", err)
	var lockErr *stripewebhook.LockError
	assert.ErrorAs(t, err, &lockErr)
	_, ran := runs.Load("evt_other")
	assert.False(t, ran, "nothing ran for the 409")
	close(release)
	require.NoError(t, <-slow)
	require.NoError(t, deliverSigned(t, h, other), "Stripe's retry")
	n, _ := runs.Load("evt_other")
	assert.Equal(t, 1, *n.(*int))
}

// The guard's configuration mistakes fail at NewHandler.
func TestOnLatestConfigErrors(t *testing.T) {
	var rec stateRecorder
	for name, c := range map[string]struct {
		d    *stripewebhook.Dispatcher
		opts []stripewebhook.HandlerOption
		want string
	}{
		"no store":                 {rec.dispatcher(t), []stripewebhook.HandlerOption{stripewebhook.WithDedup(nil)}, "OnLatest callbacks need"},
		"a store without marks":    {rec.dispatcher(t), []stripewebhook.HandlerOption{stripewebhook.WithDedup(claimsOnly{stripewebhook.NewMemoryStore(0)})}, "OnLatest callbacks need"},
		"refetch without a client": {rec.dispatcher(t), []stripewebhook.HandlerOption{stripewebhook.WithRefetchStale()}, "WithClient"},
		"a zero lock wait":         {rec.dispatcher(t), []stripewebhook.HandlerOption{stripewebhook.WithLockWait(0)}, "lock wait"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := stripewebhook.NewHandler(c.d, stripewebhook.Secrets(testSecret), c.opts...)
			require.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	// Without OnLatest, a store that keeps no marks is fine.
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil }))
	_, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithDedup(claimsOnly{stripewebhook.NewMemoryStore(0)}))
	require.NoError(t, err)
}

// claimsOnly is a Store that is not a StateStore.
type claimsOnly struct{ s *stripewebhook.MemoryStore }

func (c claimsOnly) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	return c.s.Claim(ctx, key, lease)
}
func (c claimsOnly) Complete(ctx context.Context, key, token string, retention time.Duration) error {
	return c.s.Complete(ctx, key, token, retention)
}
func (c claimsOnly) Release(ctx context.Context, key, token string) error {
	return c.s.Release(ctx, key, token)
}
func (c claimsOnly) Extend(ctx context.Context, key, token string, lease time.Duration) error {
	return c.s.Extend(ctx, key, token, lease)
}

// SubscriptionKey groups a subscription's events under its id.
func TestSubscriptionKey(t *testing.T) {
	for name, c := range map[string]struct {
		payload []byte
		want    string
	}{
		"subscription": {webhooktest.Fixture(t, "customer.subscription.updated", fixture.ObjectField("id", "sub_A")), "sub_A"},
		"invoice": {webhooktest.Fixture(t, "invoice.paid",
			fixture.ObjectField("parent", map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": "sub_A"}})), "sub_A"},
		"invoice of an older API version": {webhooktest.Fixture(t, "invoice.paid", fixture.ObjectField("parent", nil), fixture.ObjectField("subscription", "sub_A")), "sub_A"},
		"invoice of no subscription":      {webhooktest.Fixture(t, "invoice.paid", fixture.ObjectField("parent", nil), fixture.ObjectField("subscription", nil)), ""},
		"checkout session":                {webhooktest.Fixture(t, "checkout.session.completed", fixture.ObjectField("subscription", "sub_A")), "sub_A"},
		"expanded":                        {webhooktest.Fixture(t, "checkout.session.completed", fixture.ObjectField("subscription", map[string]any{"id": "sub_A", "object": "subscription"})), "sub_A"},
		"another object":                  {webhooktest.Fixture(t, "payment_intent.succeeded"), ""},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := stripewebhook.ParseEvent(c.payload)
			require.NoError(t, err)
			assert.Equal(t, c.want, stripewebhook.SubscriptionKey(e))
		})
	}
}
