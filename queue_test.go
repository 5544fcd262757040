package stripewebhook_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
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

// recordingQueue accepts or refuses enqueues; the engines' behaviour is
// tested against real servers by queuetest.
type recordingQueue struct {
	mu   sync.Mutex
	msgs []stripewebhook.Message
	err  error
}

func (q *recordingQueue) Enqueue(_ context.Context, m stripewebhook.Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.msgs = append(q.msgs, m)
	return nil
}
func (q *recordingQueue) VisibilityTimeout() time.Duration { return 0 }

func (q *recordingQueue) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (q *recordingQueue) DeadLetters(context.Context) ([]stripewebhook.DeadLetter, error) {
	return nil, nil
}
func (q *recordingQueue) Replay(context.Context, string) error { return nil }

// In the asynchronous mode the handler acknowledges what the queue
// accepted, 503 when it cannot, and queues nothing that no callback would
// handle; the callbacks do not run in the request.
func TestHandlerQueues(t *testing.T) {
	q := &recordingQueue{}
	rec := &recorder{}
	ran := 0
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { ran++; return nil })
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q),
		stripewebhook.WithObserver(rec), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	serve := func(p []byte) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, webhooktest.NewRequest(t, "/webhook", p, testSecret))
		return w
	}
	inv := invoicePaid(t)
	assert.Equal(t, 200, serve(inv).Code)
	require.Len(t, q.msgs, 1)
	assert.Equal(t, "evt_1SbQkR2eZvKYlo2C00000007", q.msgs[0].ID)
	assert.Equal(t, "in_1SbQkR2eZvKYlo2CiNvOiCe1", q.msgs[0].Key, "keyed by the object, for per-object serialisation")
	assert.Equal(t, "#1", q.msgs[0].Secret)
	assert.Equal(t, inv, q.msgs[0].Payload)
	assert.Equal(t, stripewebhook.OutcomeQueued, rec.last(stripewebhook.OpDelivery).Outcome)
	assert.Zero(t, ran, "callbacks run in a worker, not in the request")

	assert.Equal(t, 200, serve(webhooktest.Fixture(t, "charge.succeeded")).Code)
	assert.Len(t, q.msgs, 1, "nothing would handle it: not queued")

	q.err = errors.New("nats: timeout")
	w := serve(inv)
	assert.Equal(t, 503, w.Code)
	assert.Equal(t, "queue unavailable, retry later\n", w.Body.String())
	assert.Equal(t, stripewebhook.OutcomeQueueUnavailable, rec.last(stripewebhook.OpDelivery).Outcome)
}

func TestNewWorkerConfigErrors(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	q := &recordingQueue{}
	quiet := stripewebhook.WithLogger(slog.New(slog.DiscardHandler))
	newHandler := func(opts ...stripewebhook.HandlerOption) *stripewebhook.Handler {
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), append([]stripewebhook.HandlerOption{quiet}, opts...)...)
		require.NoError(t, err)
		return h
	}
	h := newHandler(stripewebhook.WithQueue(q))
	for _, tc := range []struct {
		opt  stripewebhook.WorkerOption
		want string
	}{
		{stripewebhook.WithConcurrency(0), "concurrency must be positive"},
		{stripewebhook.WithMaxAttempts(0), "max attempts must be positive"},
		{stripewebhook.WithBackoff(0, time.Second), "backoff must be positive"},
		{stripewebhook.WithBackoff(time.Second, time.Millisecond), "its maximum at least the first delay"},
		{stripewebhook.WithDrainTimeout(0), "drain timeout must be positive"},
	} {
		_, err := stripewebhook.NewWorker(h, tc.opt)
		assert.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := stripewebhook.NewWorker(newHandler())
	assert.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
	assert.ErrorContains(t, err, "no queue", "a worker of a handler that queues nothing")
	_, err = stripewebhook.NewWorker(newHandler(stripewebhook.WithQueue(q), stripewebhook.WithDedup(nil)))
	assert.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
	assert.ErrorContains(t, err, "needs a dedup store")
	_, err = stripewebhook.NewWorker(nil)
	assert.Error(t, err)
	w, err := stripewebhook.NewWorker(h)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, w.Run(ctx), "a worker whose context is done returns")
}

// flakyQueue fails its first receives, then hands out nothing.
type flakyQueue struct {
	recordingQueue
	mu    sync.Mutex
	fails int
}

func (q *flakyQueue) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	q.mu.Lock()
	if q.fails > 0 {
		q.fails--
		q.mu.Unlock()
		return nil, errors.New("nats: connection closed")
	}
	q.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

// An outage of the queue does not stop a worker: it retries, and returns
// only when its context ends.
func TestWorkerSurvivesReceiveErrors(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	q := &flakyQueue{fails: 5}
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(1), stripewebhook.WithBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.Eventually(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.fails == 0 }, 5*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the worker stopped on a queue error: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	assert.NoError(t, <-done)
}

// limitedQueue is a queue whose server bounds a message.
type limitedQueue struct {
	recordingQueue
	limit int64
}

func (q *limitedQueue) MaxPayload() int64 { return q.limit }

// A body cap the queue cannot hold fails at start-up when it was asked
// for, and the default cap is lowered to fit, with a warning: never a
// delivery answered 503 for ever.
func TestBodyCapFitsTheQueue(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil }))
	q := &limitedQueue{limit: 64 << 10}
	_, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q), stripewebhook.WithMaxBodyBytes(1<<20))
	require.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
	assert.Contains(t, err.Error(), "max_payload")

	var logs bytes.Buffer
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithQueue(q),
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "max_payload")
	big := webhooktest.Fixture(t, "invoice.paid", fixture.ObjectField("description", strings.Repeat("x", 70<<10)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", big, testSecret))
	assert.Equal(t, 413, rec.Code, "a body the queue cannot hold is refused for good")
	assert.Empty(t, q.msgs)
}
