package stripewebhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// memQueue is an in-memory Queue for the core's tests of the Worker: an
// optional visibility timeout (vt: a delivery neither settled nor
// extended within it is delivered again, as if its worker had died),
// retries after their delay, a dead letter and a replay that starts a
// fresh series. The engines are tested against their real servers by
// queuetest.
type memQueue struct {
	ready chan *memDelivery
	vt    time.Duration // 0: none
	mu    sync.Mutex
	dead  map[string]stripewebhook.DeadLetter
	acked []string
	lost  []string // the events whose visibility timeout passed
}

func newMemQueue() *memQueue {
	return &memQueue{ready: make(chan *memDelivery, 1024), dead: map[string]stripewebhook.DeadLetter{}}
}

type memDelivery struct {
	q       *memQueue
	m       stripewebhook.Message
	attempt int
	at      time.Time

	mu      sync.Mutex
	settled bool
	timer   *time.Timer
}

func (q *memQueue) Enqueue(_ context.Context, m stripewebhook.Message) error {
	q.ready <- &memDelivery{q: q, m: m, attempt: 1, at: time.Now()}
	return nil
}

func (q *memQueue) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	select {
	case d := <-q.ready:
		if q.vt > 0 {
			d.timer = time.AfterFunc(q.vt, func() {
				if d.settle() {
					q.mu.Lock()
					q.lost = append(q.lost, d.m.ID)
					q.mu.Unlock()
					q.ready <- &memDelivery{q: q, m: d.m, attempt: d.attempt + 1, at: d.at}
				}
			})
		}
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (q *memQueue) VisibilityTimeout() time.Duration { return q.vt }

func (q *memQueue) DeadLetters(context.Context) ([]stripewebhook.DeadLetter, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []stripewebhook.DeadLetter
	for _, dl := range q.dead {
		out = append(out, dl)
	}
	return out, nil
}

func (q *memQueue) Replay(_ context.Context, id string) error {
	q.mu.Lock()
	dl, ok := q.dead[id]
	delete(q.dead, id)
	q.mu.Unlock()
	if !ok {
		return fmt.Errorf("memqueue: %s: %w", id, stripewebhook.ErrNoDeadLetter)
	}
	q.ready <- &memDelivery{q: q, m: dl.Message, attempt: 1, at: time.Now()}
	return nil
}

func (q *memQueue) ackedIDs() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.acked...)
}

func (q *memQueue) lostIDs() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.lost...)
}

// settle marks d settled, and says whether it was not already (its
// visibility timeout passed, or it was settled before).
func (d *memDelivery) settle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return false
	}
	d.settled = true
	if d.timer != nil {
		d.timer.Stop()
	}
	return true
}

var errMemSettled = errors.New("memqueue: settled already, or its visibility timeout passed")

func (d *memDelivery) Message() stripewebhook.Message { return d.m }
func (d *memDelivery) Attempt() int                   { return d.attempt }
func (d *memDelivery) EnqueuedAt() time.Time          { return d.at }
func (d *memDelivery) Extend(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return errMemSettled
	}
	if d.timer != nil {
		d.timer.Reset(d.q.vt)
	}
	return nil
}
func (d *memDelivery) Ack(context.Context) error {
	if !d.settle() {
		return errMemSettled
	}
	d.q.mu.Lock()
	d.q.acked = append(d.q.acked, d.m.ID)
	d.q.mu.Unlock()
	return nil
}
func (d *memDelivery) Retry(_ context.Context, delay time.Duration) error {
	if !d.settle() {
		return errMemSettled
	}
	next := &memDelivery{q: d.q, m: d.m, attempt: d.attempt + 1, at: d.at}
	time.AfterFunc(delay, func() { d.q.ready <- next })
	return nil
}
func (d *memDelivery) Return(context.Context) error {
	if !d.settle() {
		return errMemSettled
	}
	d.q.ready <- &memDelivery{q: d.q, m: d.m, attempt: d.attempt, at: d.at}
	return nil
}
func (d *memDelivery) DeadLetter(_ context.Context, reason string) error {
	if !d.settle() {
		return errMemSettled
	}
	d.q.mu.Lock()
	d.q.dead[d.m.ID] = stripewebhook.DeadLetter{Message: d.m, Reason: reason, Attempts: d.attempt, At: time.Now()}
	d.q.mu.Unlock()
	return nil
}

// asyncApp is a handler and a worker on one memQueue and one store, whose
// invoice.paid callback runs fail(id, attempt) and counts its runs, and the
// most runs at once about one object.
type asyncApp struct {
	h        *stripewebhook.Handler
	q        *memQueue
	mu       sync.Mutex
	runs     map[string]int
	busy     map[string]int // runs in flight by object
	maxBusy  int
	fail     func(id string, run int) error
	runDelay time.Duration
	done     map[string]time.Time // when each event's callback succeeded
	onRun    func(e *stripewebhook.Event)
}

func newAsyncApp(t *testing.T, store stripewebhook.Store, opts ...stripewebhook.WorkerOption) *asyncApp {
	t.Helper()
	return startAsyncApp(t, newMemQueue(), store, nil, opts...)
}

// startAsyncApp is newAsyncApp on q, with handler options.
func startAsyncApp(t *testing.T, q *memQueue, store stripewebhook.Store, hopts []stripewebhook.HandlerOption, opts ...stripewebhook.WorkerOption) *asyncApp {
	t.Helper()
	a := &asyncApp{q: q, runs: map[string]int{}, busy: map[string]int{}, done: map[string]time.Time{}}
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		var obj struct{ ID string }
		if err := json.Unmarshal(e.Object, &obj); err != nil {
			return err
		}
		a.mu.Lock()
		a.runs[e.ID]++
		run := a.runs[e.ID]
		a.busy[obj.ID]++
		a.maxBusy = max(a.maxBusy, a.busy[obj.ID])
		fail, onRun := a.fail, a.onRun
		a.mu.Unlock()
		if onRun != nil {
			onRun(e)
		}
		time.Sleep(a.runDelay)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.busy[obj.ID]--
		if fail != nil {
			if err := fail(e.ID, run); err != nil {
				return err
			}
		}
		a.done[e.ID] = time.Now()
		return nil
	}))
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), append([]stripewebhook.HandlerOption{stripewebhook.WithQueue(a.q),
		stripewebhook.WithDedup(store), stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, hopts...)...)
	require.NoError(t, err)
	a.h = h
	w, err := stripewebhook.NewWorker(h, append([]stripewebhook.WorkerOption{stripewebhook.WithBackoff(time.Millisecond, 4*time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return a
}

func (a *asyncApp) send(t *testing.T, payload []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", payload, testSecret))
	require.Equal(t, 200, rec.Code, rec.Body.String())
}

func (a *asyncApp) runsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

func invoiceEvent(t *testing.T, id, invoice string) []byte {
	return webhooktest.Fixture(t, "invoice.paid", fixture.ID(id), fixture.ObjectField("id", invoice))
}

// A failing callback is retried, then set aside after the last attempt;
// a replay starts a fresh series that runs it again.
func TestWorkerRetriesThenDeadLettersThenReplays(t *testing.T) {
	a := newAsyncApp(t, stripewebhook.NewMemoryStore(0), stripewebhook.WithMaxAttempts(3))
	var fixed atomic.Bool
	a.fail = func(string, int) error {
		if fixed.Load() {
			return nil
		}
		return errors.New("ledger down")
	}
	a.send(t, invoiceEvent(t, "evt_dl", "in_dl"))
	require.Eventually(t, func() bool { dl, _ := a.q.DeadLetters(context.Background()); return len(dl) == 1 }, 5*time.Second, time.Millisecond)
	dl, _ := a.q.DeadLetters(context.Background())
	assert.Equal(t, 3, dl[0].Attempts)
	assert.Contains(t, dl[0].Reason, "ledger down")
	assert.Equal(t, 3, a.runsOf("evt_dl"), "one run per attempt, then none")

	fixed.Store(true)
	require.NoError(t, a.q.Replay(context.Background(), "evt_dl"))
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 4, a.runsOf("evt_dl"), "the replay ran it once more, and it succeeded")
	assert.ErrorIs(t, a.q.Replay(context.Background(), "evt_dl"), stripewebhook.ErrNoDeadLetter)
}

// Stripe's duplicates, queued twice, run once: the worker's claim finds
// the event done.
func TestWorkerRunsQueuedDuplicatesOnce(t *testing.T) {
	a := newAsyncApp(t, stripewebhook.NewMemoryStore(0))
	p := invoiceEvent(t, "evt_dup", "in_dup")
	for range 3 {
		a.send(t, p)
	}
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == 3 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, a.runsOf("evt_dup"))
}

// Events about one object run one at a time, through the object's lock in
// the store, while the worker runs four at once.
func TestWorkerSerialisesAnObjectsEvents(t *testing.T) {
	a := newAsyncApp(t, stripewebhook.NewMemoryStore(0), stripewebhook.WithConcurrency(4))
	a.runDelay = 5 * time.Millisecond
	for i := range 8 {
		a.send(t, invoiceEvent(t, fmt.Sprintf("evt_obj_%d", i), "in_same"))
	}
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == 8 }, 10*time.Second, time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	assert.Equal(t, 1, a.maxBusy, "two runs about one object overlapped")
	assert.Len(t, a.runs, 8)
}

// A store outage is not a failed run: the event waits, and runs once the
// store is back, without reaching the dead letter.
func TestWorkerWaitsOutAStoreOutage(t *testing.T) {
	store := &flakyStore{Store: stripewebhook.NewMemoryStore(0)}
	store.down.Store(true)
	a := newAsyncApp(t, store, stripewebhook.WithMaxAttempts(2))
	a.send(t, invoiceEvent(t, "evt_outage", "in_outage"))
	require.Eventually(t, func() bool { return store.claims.Load() >= 3 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 0, a.runsOf("evt_outage"))
	store.down.Store(false)
	require.Eventually(t, func() bool { return len(a.q.ackedIDs()) == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, a.runsOf("evt_outage"))
	dl, _ := a.q.DeadLetters(context.Background())
	assert.Empty(t, dl)
}

// flakyStore fails every Claim while down.
type flakyStore struct {
	stripewebhook.Store
	down   atomic.Bool
	claims atomic.Int32
}

func (s *flakyStore) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	s.claims.Add(1)
	if s.down.Load() {
		return stripewebhook.Claim{}, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return s.Store.Claim(ctx, key, lease)
}

// The asynchronous mode: the handler answers once the queue holds the
// event, and a worker built from it runs the callbacks later, with the
// handler's dispatcher, queue and dedup store. (memQueue stands in for
// jsqueue, rivqueue or amqpqueue.)
func ExampleNewWorker() {
	answered, ran := make(chan struct{}), make(chan struct{})
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		<-answered // only so that the output's order is fixed
		fmt.Println("worker: ran", e.ID)
		close(ran)
		return nil
	})
	q := newMemQueue()
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_example"), stripewebhook.WithQueue(q))
	if err != nil {
		panic(err)
	}
	w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(8))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()

	payload, _ := fixture.Load("invoice.paid", fixture.ID("evt_async"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(exampleT{}, "/webhook", payload, "whsec_example"))
	fmt.Println("handler:", rec.Code, rec.Body.String())
	close(answered)
	<-ran
	stop() // on SIGTERM: Run takes no new event, lets those in flight finish
	fmt.Println("stopped:", <-stopped)
	// Output:
	// handler: 200 ok
	//
	// worker: ran evt_async
	// stopped: <nil>
}
