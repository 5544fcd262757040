// Package queuetest is the conformance suite for implementations of
// stripewebhook.Queue, run against the engine's real server:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, queuetest.Config{
//			Open: func(t *testing.T, ns string) stripewebhook.Queue { return myqueue.New(client, ns) },
//			AckWait: time.Second,
//		})
//	}
package queuetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// Config describes the queue under test.
type Config struct {
	// Open returns a queue instance (a client of its own) on namespace ns:
	// instances opened on one ns share their events, as replicas do.
	Open func(t *testing.T, ns string) stripewebhook.Queue
	// AckWait is the visibility timeout Open configures: how long an event
	// received and never settled waits before it is delivered again. Keep
	// it short (a second or two).
	AckWait time.Duration
	// Redelivery bounds how long the redelivery of such an event may take
	// (default three AckWaits and 5 s), for engines that rescue on an
	// interval of their own.
	Redelivery time.Duration
	// Handback bounds how long a returned delivery may take to reach
	// another receiver (default 5 s), for engines whose idle instances
	// fetch ahead and pass it between them (River).
	Handback time.Duration
	// Backend is the engine's host:port; with OpenVia the suite puts a TCP
	// proxy in front of it to cut the engine off and bring it back.
	Backend string
	// OpenVia opens an instance on ns that reaches its server at addr.
	OpenVia func(t *testing.T, ns, addr string) stripewebhook.Queue
}

// Run runs the whole suite.
func Run(t *testing.T, c Config) {
	t.Run("DurableAcceptance", func(t *testing.T) { DurableAcceptance(t, c) })
	t.Run("RedeliveryAfterKilledWorker", func(t *testing.T) { RedeliveryAfterKilledWorker(t, c) })
	t.Run("ExtendAndReturn", func(t *testing.T) { ExtendAndReturn(t, c) })
	t.Run("HoldPastLeaseAndVisibility", func(t *testing.T) { HoldPastLeaseAndVisibility(t, c) })
	t.Run("ClaimHeldElsewhere", func(t *testing.T) { ClaimHeldElsewhere(t, c) })
	t.Run("BusyObject", func(t *testing.T) { BusyObject(t, c) })
	t.Run("ExactlyOnce", func(t *testing.T) { ExactlyOnce(t, c) })
	t.Run("DeadLetter", func(t *testing.T) { DeadLetterAndReplay(t, c) })
	t.Run("PerObjectSerialisation", func(t *testing.T) { PerObjectSerialisation(t, c) })
	t.Run("Drain", func(t *testing.T) { Drain(t, c) })
	if c.OpenVia != nil && c.Backend != "" {
		t.Run("Outage", func(t *testing.T) { Outage(t, c) })
	}
}

const secret = "whsec_queuetest"

// Namespace returns a fresh namespace, so that runs never see each other's
// events.
func Namespace(t testing.TB) string {
	return strings.ReplaceAll(dedupstoretest.Key(t), "evt_test_", "QT")
}

// app counts each event's successful runs, fails the first run of the
// events fail selects, and tracks runs in flight per object.
type app struct {
	mu       sync.Mutex
	ok       map[string]int
	attempts map[string]int
	inFlight map[string]int
	maxIn    int
	fail     func(id string, attempt int) bool
	slow     time.Duration
	started  chan string
}

func newApp() *app {
	return &app{ok: map[string]int{}, attempts: map[string]int{}, inFlight: map[string]int{}, fail: func(string, int) bool { return false }}
}

func (a *app) dispatcher() *stripewebhook.Dispatcher {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("*", func(ctx context.Context, e *stripewebhook.Event) error {
		key := string(e.Object)
		a.mu.Lock()
		a.attempts[e.ID]++
		n := a.attempts[e.ID]
		a.inFlight[key]++
		a.maxIn = max(a.maxIn, a.inFlight[key])
		a.mu.Unlock()
		if a.started != nil {
			a.started <- e.ID
		}
		defer func() { a.mu.Lock(); a.inFlight[key]--; a.mu.Unlock() }()
		select {
		case <-time.After(a.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
		if a.fail(e.ID, n) {
			return errors.New("first run fails")
		}
		a.mu.Lock()
		a.ok[e.ID]++
		a.mu.Unlock()
		return nil
	})
	return d
}

func (a *app) succeeded(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok[id]
}

func quiet() stripewebhook.HandlerOption {
	return stripewebhook.WithLogger(slog.New(slog.DiscardHandler))
}

func handler(t *testing.T, d *stripewebhook.Dispatcher, q stripewebhook.Queue, store stripewebhook.Store, opts ...stripewebhook.HandlerOption) *stripewebhook.Handler {
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret), append([]stripewebhook.HandlerOption{stripewebhook.WithQueue(q), stripewebhook.WithDedup(store), quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// startWorker runs a worker of h's queue until the test ends, or until
// stop is called.
func startWorker(t *testing.T, h *stripewebhook.Handler, opts ...stripewebhook.WorkerOption) (stop func() error) {
	w, err := stripewebhook.NewWorker(h, append([]stripewebhook.WorkerOption{stripewebhook.WithBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

func events(t *testing.T, prefix string, n int, edits ...fixture.Edit) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = webhooktest.Fixture(t, "invoice.paid", append([]fixture.Edit{fixture.ID(fmt.Sprintf("%s_%03d", prefix, i)),
			fixture.ObjectField("id", fmt.Sprintf("in_%s_%03d", prefix, i))}, edits...)...)
	}
	return out
}

func deliver(t *testing.T, h http.Handler, payload []byte) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", payload, secret))
	return rec.Code
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func idOf(t *testing.T, p []byte) string {
	e, err := stripewebhook.ParseEvent(p)
	if err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// DurableAcceptance: events acknowledged (200) while no worker runs are
// all there for a worker on another instance, and each runs once.
func DurableAcceptance(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	d := a.dispatcher()
	h := handler(t, d, c.Open(t, ns), store)
	evs := events(t, ns, 20)
	for _, p := range evs {
		if code := deliver(t, h, p); code != 200 {
			t.Fatalf("enqueue: %d", code)
		}
	}
	startWorker(t, handler(t, d, c.Open(t, ns), store))
	for _, p := range evs {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
}

// receiveOne queues an event on q and receives it.
func receiveOne(t *testing.T, q stripewebhook.Queue, ns string) ([]byte, stripewebhook.Delivery) {
	p := events(t, ns, 1)[0]
	if err := q.Enqueue(context.Background(), stripewebhook.Message{ID: idOf(t, p), Key: "k", Payload: p}); err != nil {
		t.Fatal(err)
	}
	d, err := q.Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p, d
}

// RedeliveryAfterKilledWorker: an event received and never settled is
// delivered again after the visibility timeout, with a higher attempt.
func RedeliveryAfterKilledWorker(t *testing.T, c Config) {
	ns := Namespace(t)
	q := c.Open(t, ns)
	p, first := receiveOne(t, q, ns)
	ctx := context.Background()
	// The worker dies holding it. Another instance gets it again.
	within := c.Redelivery
	if within == 0 {
		within = c.AckWait*3 + 5*time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	second, err := c.Open(t, ns).Receive(rctx)
	if err != nil {
		t.Fatalf("not redelivered after the visibility timeout (%v): %v", c.AckWait, err)
	}
	if second.Message().ID != first.Message().ID || second.Attempt() != first.Attempt()+1 || string(second.Message().Payload) != string(p) {
		t.Fatalf("redelivered %s attempt %d, want %s attempt %d", second.Message().ID, second.Attempt(), first.Message().ID, first.Attempt()+1)
	}
	if err := second.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// ExtendAndReturn: a delivery extended before each visibility timeout
// stays with its receiver for several timeouts; returned, it is at once
// another receiver's, with the same attempt.
func ExtendAndReturn(t *testing.T, c Config) {
	ns := Namespace(t)
	q, other := c.Open(t, ns), c.Open(t, ns)
	if got := q.VisibilityTimeout(); got != c.AckWait {
		t.Fatalf("VisibilityTimeout() = %v, want the %v configured", got, c.AckWait)
	}
	p, first := receiveOne(t, q, ns)
	ctx := context.Background()
	got := make(chan stripewebhook.Delivery, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if d, err := other.Receive(rctx); err == nil {
			got <- d
		}
	}()
	hold := c.Redelivery
	if hold == 0 {
		hold = c.AckWait * 3
	}
	for end := time.Now().Add(hold); time.Now().Before(end); {
		time.Sleep(c.AckWait / 4)
		if err := first.Extend(ctx); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		select {
		case d := <-got:
			t.Fatalf("%s delivered again (attempt %d) while its receiver extended it", d.Message().ID, d.Attempt())
		default:
		}
	}
	if err := first.Return(ctx); err != nil {
		t.Fatalf("Return: %v", err)
	}
	handback := cmp.Or(c.Handback, 5*time.Second)
	var second stripewebhook.Delivery
	select {
	case second = <-got:
	case <-time.After(handback):
		t.Fatalf("a returned delivery was not received again within %v", handback)
	}
	if second.Message().ID != first.Message().ID || second.Attempt() != first.Attempt() || string(second.Message().Payload) != string(p) {
		t.Fatalf("returned %s attempt %d, received %s attempt %d", first.Message().ID, first.Attempt(), second.Message().ID, second.Attempt())
	}
	if err := second.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// HoldPastLeaseAndVisibility: events about one object whose runs, one
// after another, last longer than the dedup lease and the visibility
// timeout, on two workers: each succeeds once, at its first attempt.
func HoldPastLeaseAndVisibility(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	const n = 6
	a.slow = c.AckWait / 2 // n runs: three visibility timeouts and leases
	d := a.dispatcher()
	lease := stripewebhook.WithLease(c.AckWait)
	h := handler(t, d, c.Open(t, ns), store, lease)
	evs := events(t, ns, n)
	for i := range evs {
		evs[i] = webhooktest.Vary(t, evs[i], fixture.ObjectField("id", "in_held_"+ns))
		if code := deliver(t, h, evs[i]); code != 200 {
			t.Fatalf("enqueue: %d", code)
		}
	}
	for range 2 {
		startWorker(t, handler(t, d, c.Open(t, ns), store, lease), stripewebhook.WithConcurrency(2))
	}
	for _, p := range evs {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
	time.Sleep(c.AckWait) // what a lost visibility would deliver again
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range evs {
		if id := idOf(t, p); a.ok[id] != 1 || a.attempts[id] != 1 {
			t.Errorf("%s: %d runs, %d succeeded; want one", id, a.attempts[id], a.ok[id])
		}
	}
	if a.maxIn != 1 {
		t.Errorf("%d events about one object ran at once", a.maxIn)
	}
}

// ClaimHeldElsewhere: an event whose claim another replica holds (here, a
// crashed one's, until its lease ends) waits for it without spending
// attempts: with two attempts, its first real failure is retried and the
// retry succeeds, instead of going to the dead letter.
func ClaimHeldElsewhere(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	a.fail = func(_ string, attempt int) bool { return attempt == 1 }
	p := events(t, ns, 1)[0]
	id := idOf(t, p)
	if _, err := store.Claim(context.Background(), id, 2*c.AckWait); err != nil {
		t.Fatal(err)
	}
	d := a.dispatcher()
	q := c.Open(t, ns)
	h := handler(t, d, q, store)
	if code := deliver(t, h, p); code != 200 {
		t.Fatalf("enqueue: %d", code)
	}
	startWorker(t, handler(t, d, c.Open(t, ns), store), stripewebhook.WithMaxAttempts(2))
	eventually(t, id+" succeeded", func() bool { return a.succeeded(id) == 1 })
	if dead, err := q.DeadLetters(context.Background()); err != nil || len(dead) != 0 {
		t.Fatalf("dead letters: %v %v: waiting for the claim spent attempts", dead, err)
	}
}

// BusyObject: while a line of events about one object runs, one at a
// time, events about other objects run beside it: each is done before the
// line is a third through.
func BusyObject(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	a.slow = 40 * time.Millisecond
	d := a.dispatcher()
	h := handler(t, d, c.Open(t, ns), store)
	busy := events(t, ns+"b", 30)
	for i := range busy {
		busy[i] = webhooktest.Vary(t, busy[i], fixture.ObjectField("id", "in_busy_"+ns))
	}
	others := events(t, ns+"o", 5)
	for _, p := range append(busy, others...) {
		if code := deliver(t, h, p); code != 200 {
			t.Fatalf("enqueue: %d", code)
		}
	}
	startWorker(t, handler(t, d, c.Open(t, ns), store), stripewebhook.WithConcurrency(2))
	for _, p := range others {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
	done := 0
	for _, p := range busy {
		done += a.succeeded(idOf(t, p))
	}
	if done > len(busy)/3 {
		t.Fatalf("the other objects' events ran only after %d of the busy object's %d", done, len(busy))
	}
	for _, p := range busy {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
}

// ExactlyOnce: four handler instances, two workers, every event delivered
// three times at once to varying instances, a third of the callbacks
// failing on their first run: every delivery gets 200 and every event
// succeeds exactly once.
func ExactlyOnce(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	a.fail = func(id string, attempt int) bool { return attempt == 1 && id[len(id)-1]%3 == 0 }
	d := a.dispatcher()
	var hs []http.Handler
	for range 4 {
		hs = append(hs, handler(t, d, c.Open(t, ns), store))
	}
	for range 2 {
		startWorker(t, handler(t, d, c.Open(t, ns), store))
	}
	evs := events(t, ns, 30)
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i, p := range evs {
		for k := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if deliver(t, hs[(i+k)%4], p) != 200 {
					bad.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d deliveries not acknowledged", bad.Load())
	}
	for _, p := range evs {
		id := idOf(t, p)
		eventually(t, id+" succeeded", func() bool { return a.succeeded(id) >= 1 })
	}
	time.Sleep(200 * time.Millisecond) // let any duplicate run show itself
	for _, p := range evs {
		if n := a.succeeded(idOf(t, p)); n != 1 {
			t.Errorf("%s succeeded %d times", idOf(t, p), n)
		}
	}
}

// DeadLetterAndReplay: an event that fails every attempt goes to the dead
// letter with its error after the maximum attempts; a replay is a fresh
// series of attempts; replayed once the callback is fixed, it runs once.
func DeadLetterAndReplay(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	var broken atomic.Bool
	broken.Store(true)
	a.fail = func(string, int) bool { return broken.Load() }
	d := a.dispatcher()
	q := c.Open(t, ns)
	h := handler(t, d, q, store)
	obs := &runObserver{}
	stop := startWorker(t, handler(t, d, q, store, stripewebhook.WithObserver(obs)), stripewebhook.WithMaxAttempts(3))
	p := events(t, ns, 1)[0]
	id := idOf(t, p)
	if code := deliver(t, h, p); code != 200 {
		t.Fatalf("enqueue: %d", code)
	}
	var dead []stripewebhook.DeadLetter
	eventually(t, "the event in the dead letter", func() bool {
		var err error
		dead, err = q.DeadLetters(context.Background())
		return err == nil && len(dead) == 1
	})
	if dead[0].ID != id || dead[0].Attempts != 3 || !strings.Contains(dead[0].Reason, "first run fails") || string(dead[0].Payload) != string(p) {
		t.Fatalf("dead letter %s: %d attempts, reason %q, payload kept: %v", dead[0].ID, dead[0].Attempts, dead[0].Reason, string(dead[0].Payload) == string(p))
	}
	a.mu.Lock()
	attempts := a.attempts[id]
	a.mu.Unlock()
	if attempts != 3 {
		t.Fatalf("%d attempts, want 3", attempts)
	}
	runs := obs.reports()
	if len(runs) != 3 || runs[0].Attempt != 1 || runs[2].Attempt != 3 || runs[0].Outcome != stripewebhook.OutcomeFailed ||
		runs[2].Outcome != stripewebhook.OutcomeDeadLettered || runs[0].QueueLag <= 0 || runs[2].QueueLag < runs[0].QueueLag {
		t.Fatalf("observed runs %+v", runs)
	}
	// A replay is a fresh series: three attempts again, still broken.
	if err := q.Replay(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replayed event in the dead letter again", func() bool {
		var err error
		dead, err = q.DeadLetters(context.Background())
		return err == nil && len(dead) == 1
	})
	a.mu.Lock()
	attempts = a.attempts[id]
	a.mu.Unlock()
	if attempts != 6 || dead[0].Attempts != 3 {
		t.Fatalf("after a replay: %d runs in all and %d attempts in the dead letter; want 6 and 3 (a fresh series)", attempts, dead[0].Attempts)
	}
	broken.Store(false)
	if err := q.Replay(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replayed event ran", func() bool { return a.succeeded(id) == 1 })
	if dead, err := q.DeadLetters(context.Background()); err != nil || len(dead) != 0 {
		t.Fatalf("dead letters after the replay: %v %v", dead, err)
	}
	if err := q.Replay(context.Background(), "evt_none"); !errors.Is(err, stripewebhook.ErrNoDeadLetter) {
		t.Fatalf("replaying an unknown event: %v, want ErrNoDeadLetter", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// runObserver keeps the runs a Worker reports.
type runObserver struct {
	mu   sync.Mutex
	runs []stripewebhook.Report
}

func (o *runObserver) Start(ctx context.Context, _ stripewebhook.Op) context.Context { return ctx }
func (o *runObserver) End(_ context.Context, r *stripewebhook.Report) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := *r
	c.Event = nil
	o.runs = append(o.runs, c)
}
func (o *runObserver) reports() []stripewebhook.Report {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]stripewebhook.Report(nil), o.runs...)
}

// PerObjectSerialisation: events about one object never run at the same
// time, across workers.
func PerObjectSerialisation(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	a.slow = 20 * time.Millisecond
	d := a.dispatcher()
	h := handler(t, d, c.Open(t, ns), store)
	evs := events(t, ns, 8)
	for i := range evs { // one object for all
		evs[i] = webhooktest.Vary(t, evs[i], fixture.ObjectField("id", "in_one_object_"+ns))
	}
	for _, p := range evs {
		if code := deliver(t, h, p); code != 200 {
			t.Fatalf("enqueue: %d", code)
		}
	}
	for range 2 {
		startWorker(t, handler(t, d, c.Open(t, ns), store), stripewebhook.WithConcurrency(4))
	}
	for _, p := range evs {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
	if a.maxIn != 1 {
		t.Fatalf("%d events about one object ran at once", a.maxIn)
	}
}

// Drain: once its context is done, a worker takes no new event, lets the
// one in flight finish, and returns; the rest stay queued for the next.
func Drain(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	a.slow = 300 * time.Millisecond
	a.started = make(chan string, 16)
	d := a.dispatcher()
	h := handler(t, d, c.Open(t, ns), store)
	evs := events(t, ns, 4)
	for _, p := range evs {
		deliver(t, h, p)
	}
	stop := startWorker(t, handler(t, d, c.Open(t, ns), store), stripewebhook.WithConcurrency(1), stripewebhook.WithDrainTimeout(5*time.Second))
	first := <-a.started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if a.succeeded(first) != 1 {
		t.Fatal("the event in flight did not finish before Run returned")
	}
	startWorker(t, handler(t, d, c.Open(t, ns), store))
	for _, p := range evs {
		id := idOf(t, p)
		eventually(t, id+" ran", func() bool { return a.succeeded(id) == 1 })
	}
}

// Outage: with the engine cut off, deliveries get 503 and nothing runs;
// once it is back, the retry is queued and runs once.
func Outage(t *testing.T, c Config) {
	ns, store, a := Namespace(t), stripewebhook.NewMemoryStore(0), newApp()
	p := dedupstoretest.NewProxy(t, c.Backend)
	d := a.dispatcher()
	h := handler(t, d, c.OpenVia(t, ns, p.Addr()), store)
	startWorker(t, handler(t, d, c.Open(t, ns), store))
	ev := events(t, ns, 1)[0]
	p.Down()
	if code := deliver(t, h, ev); code != http.StatusServiceUnavailable {
		t.Fatalf("with the engine down: %d, want 503", code)
	}
	time.Sleep(200 * time.Millisecond)
	if a.succeeded(idOf(t, ev)) != 0 {
		t.Fatal("an event ran though its delivery got 503")
	}
	p.Up()
	eventually(t, "the retry accepted", func() bool { return deliver(t, h, ev) == 200 })
	eventually(t, "the event ran", func() bool { return a.succeeded(idOf(t, ev)) == 1 })
}
