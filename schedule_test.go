package stripewebhook_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
)

// Events about one object whose runs, one after another, last longer than
// the lease and the queue's visibility timeout each run once: the events
// waiting in the object's line keep their visibility, and the runs their
// claims and locks.
func TestWorkerHoldsPastLeaseAndVisibility(t *testing.T) {
	q := newMemQueue()
	q.vt = 300 * time.Millisecond
	a := startAsyncApp(t, q, stripewebhook.NewMemoryStore(0),
		[]stripewebhook.HandlerOption{stripewebhook.WithLease(300 * time.Millisecond)}, stripewebhook.WithConcurrency(4))
	a.runDelay = 150 * time.Millisecond
	const n = 8 // 1.2 s in all, 4 leases
	for i := range n {
		a.send(t, invoiceEvent(t, fmt.Sprintf("evt_hold_%d", i), "in_hold"))
	}
	require.Eventually(t, func() bool { return len(q.ackedIDs()) == n }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(2 * q.vt) // what a lost visibility would deliver again
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range n {
		assert.Equal(t, 1, a.runs[fmt.Sprintf("evt_hold_%d", i)], "evt_hold_%d", i)
	}
	assert.Empty(t, q.lostIDs(), "a visibility timeout passed on an event the worker held")
	assert.Len(t, q.ackedIDs(), n)
	assert.Equal(t, 1, a.maxBusy)
}

// A callback that runs for several leases keeps its claim: a duplicate
// queued meanwhile does not run it a second time.
func TestWorkerRenewsTheClaimOfALongRun(t *testing.T) {
	q := newMemQueue()
	q.vt = 200 * time.Millisecond
	a := startAsyncApp(t, q, stripewebhook.NewMemoryStore(0),
		[]stripewebhook.HandlerOption{stripewebhook.WithLease(200 * time.Millisecond)}, stripewebhook.WithConcurrency(2))
	a.runDelay = time.Second
	p := invoiceEvent(t, "evt_long", "in_long")
	a.send(t, p)
	time.Sleep(500 * time.Millisecond) // 2.5 leases into the run
	// The same event queued again (a Stripe retry), under another object
	// key so that it does not wait behind the first in this process: only
	// the claim can keep it from running.
	require.NoError(t, q.Enqueue(context.Background(), stripewebhook.Message{ID: "evt_long", Key: "other-line", Payload: p}))
	require.Eventually(t, func() bool { return len(q.ackedIDs()) == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, a.runsOf("evt_long"))
	assert.Empty(t, q.lostIDs())
}

// An event whose claim another replica holds (or a crashed one held, until
// its lease ends) waits without spending attempts: its first real failure
// is retried, not sent to the dead letter.
func TestWorkerWaitingForAClaimSpendsNoAttempt(t *testing.T) {
	store := stripewebhook.NewMemoryStore(0)
	c, err := store.Claim(context.Background(), "evt_held", 700*time.Millisecond) // a crashed replica's claim
	require.NoError(t, err)
	require.Equal(t, stripewebhook.Claimed, c.Status)
	a := newAsyncApp(t, store, stripewebhook.WithMaxAttempts(2))
	a.fail = func(_ string, run int) error {
		if run == 1 {
			return errors.New("first run fails")
		}
		return nil
	}
	a.send(t, invoiceEvent(t, "evt_held", "in_held"))
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, a.runsOf("evt_held"), "one failed run, one retry")
	dl, _ := a.q.DeadLetters(context.Background())
	assert.Empty(t, dl, "waiting for the claim spent the attempts")
}

// One busy object does not hold up the others: while a line of events
// about one object runs, one at a time, the events about other objects run
// in the other slots.
func TestWorkerBusyObjectDoesNotDelayOthers(t *testing.T) {
	a := newAsyncApp(t, stripewebhook.NewMemoryStore(0), stripewebhook.WithConcurrency(2))
	a.runDelay = 50 * time.Millisecond
	const busy = 30 // 1.5 s of runs about one object
	for i := range busy {
		a.send(t, invoiceEvent(t, fmt.Sprintf("evt_busy_%d", i), "in_busy"))
	}
	start := time.Now()
	for i := range 5 {
		a.send(t, invoiceEvent(t, fmt.Sprintf("evt_other_%d", i), fmt.Sprintf("in_other_%d", i)))
	}
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == busy+5 }, 20*time.Second, 5*time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range 5 {
		took := a.done[fmt.Sprintf("evt_other_%d", i)].Sub(start)
		assert.Less(t, took, 600*time.Millisecond, "evt_other_%d waited behind the busy object", i)
	}
	assert.Equal(t, 1, a.maxBusy)
}

// A worker stopping hands back the events it holds and has not started,
// with no attempt spent.
func TestWorkerHandsBackWhatItHasNotStarted(t *testing.T) {
	q := newMemQueue()
	store := stripewebhook.NewMemoryStore(0)
	started := make(chan struct{}, 16)
	release := make(chan struct{})
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		started <- struct{}{}
		<-release
		return nil
	}))
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
	require.NoError(t, err)
	w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(1), stripewebhook.WithDrainTimeout(5*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for i := range 3 {
		require.NoError(t, deliverSigned(t, h, invoiceEvent(t, fmt.Sprintf("evt_back_%d", i), "in_back")))
	}
	<-started
	time.Sleep(50 * time.Millisecond) // the other two are received, behind the first
	cancel()
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, []string{"evt_back_0"}, q.ackedIDs())
	require.Len(t, q.ready, 2)
	for range 2 {
		d := <-q.ready
		assert.Equal(t, 1, d.attempt, "%s came back with an attempt spent", d.m.ID)
	}
}
