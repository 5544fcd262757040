package stripewebhook_test

import (
	"context"
	"fmt"
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

// billing is what a billing application keeps: each subscription's state
// (applied by an OnLatest callback, in the order applied) and the events
// its action callback saw.
type billing struct {
	mu      sync.Mutex
	applied map[string][]appliedState // by subscription
	actions map[string]int            // runs by event id
}

type appliedState struct {
	created int64
	status  stripe.SubscriptionStatus
}

func newBilling() *billing {
	return &billing{applied: map[string][]appliedState{}, actions: map[string]int{}}
}

func (b *billing) dispatcher(t *testing.T) *stripewebhook.Dispatcher {
	d := stripewebhook.NewDispatcher()
	require.NoError(t, stripewebhook.OnLatest(d, "customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.applied[sub.ID] = append(b.applied[sub.ID], appliedState{e.Created, sub.Status})
		return nil
	}))
	require.NoError(t, d.HandleFunc("*", func(ctx context.Context, e *stripewebhook.Event) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.actions[e.ID]++
		return nil
	}))
	return d
}

// check asserts what must hold after a flow, whatever its order: every
// event's action ran once, the subscription's states were applied in
// increasing created order (no stale snapshot after a newer one), and the
// last applied is the newest, canceled.
func (b *billing) check(t *testing.T, flow [][]byte) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, payload := range flow {
		e, err := stripewebhook.ParseEvent(payload)
		require.NoError(t, err)
		assert.Equal(t, 1, b.actions[e.ID], "action runs of %s", e.ID)
	}
	states := b.applied[fixture.Subscription]
	require.NotEmpty(t, states)
	for i := 1; i < len(states); i++ {
		assert.Greater(t, states[i].created, states[i-1].created, "state %d applied after a newer one: %v", i, states)
	}
	assert.Equal(t, stripe.SubscriptionStatusCanceled, states[len(states)-1].status, "%v", states)
}

func (b *billing) actionsDone(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.actions) == n
}

// orders are the delivery orders the flow is tried in.
func orders() map[string]fixture.Order {
	o := map[string]fixture.Order{"in order": fixture.InOrder, "reversed": fixture.Reversed}
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		o[fmt.Sprintf("shuffled %d", seed)] = fixture.Shuffled(seed)
	}
	return o
}

// deliverUntilAccepted delivers payload to h as Stripe does: again after
// anything but a 2xx (409 while the subscription's lock is held).
func deliverUntilAccepted(t *testing.T, h *stripewebhook.Handler, payload []byte) {
	for range 500 {
		if stripewebhook.StatusCode(deliverSigned(t, h, payload)) == http.StatusOK {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Errorf("not accepted after 500 deliveries")
}

// A subscription's lifecycle delivered out of order to two replicas that
// share a store: synchronously one event at a time, and all at once.
func TestOrderingSynchronousTwoReplicas(t *testing.T) {
	flow := webhooktest.SubscriptionFlow(t)
	for name, order := range orders() {
		for _, concurrent := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, concurrent %v", name, concurrent), func(t *testing.T) {
				b := newBilling()
				store := stripewebhook.NewMemoryStore(0)
				var replicas [2]*stripewebhook.Handler
				for i := range replicas {
					h, err := stripewebhook.NewHandler(b.dispatcher(t), stripewebhook.Secrets(testSecret), stripewebhook.WithDedup(store),
						stripewebhook.WithLockKey(stripewebhook.SubscriptionKey), stripewebhook.WithLockWait(20*time.Millisecond),
						stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
					require.NoError(t, err)
					replicas[i] = h
				}
				var wg sync.WaitGroup
				for i, payload := range order(flow) {
					if !concurrent {
						deliverUntilAccepted(t, replicas[i%2], payload)
						continue
					}
					wg.Add(1)
					go func() { defer wg.Done(); deliverUntilAccepted(t, replicas[i%2], payload) }()
				}
				wg.Wait()
				b.check(t, flow)
			})
		}
	}
}

// The same in the asynchronous mode: two replicas, each a handler and a
// worker, on one queue and one store.
func TestOrderingAsynchronousTwoReplicas(t *testing.T) {
	flow := webhooktest.SubscriptionFlow(t)
	for name, order := range orders() {
		t.Run(name, func(t *testing.T) {
			b := newBilling()
			store := stripewebhook.NewMemoryStore(0)
			q := newMemQueue()
			var replicas [2]*stripewebhook.Handler
			for i := range replicas {
				h, err := stripewebhook.NewHandler(b.dispatcher(t), stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q),
					stripewebhook.WithDedup(store), stripewebhook.WithLockKey(stripewebhook.SubscriptionKey),
					stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
				require.NoError(t, err)
				replicas[i] = h
				w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(4), stripewebhook.WithBackoff(time.Millisecond, 4*time.Millisecond))
				require.NoError(t, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
			}
			for i, payload := range order(flow) {
				deliverUntilAccepted(t, replicas[i%2], payload)
			}
			require.Eventually(t, func() bool { return b.actionsDone(len(flow)) }, 10*time.Second, 5*time.Millisecond)
			time.Sleep(20 * time.Millisecond) // a duplicate run would show now
			b.check(t, flow)
		})
	}
}
