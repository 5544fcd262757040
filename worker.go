package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Worker defaults.
const (
	DefaultConcurrency  = 4
	DefaultMaxAttempts  = 8
	DefaultBackoff      = time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultDrainTimeout = 30 * time.Second
)

// Worker runs the callbacks of the events a [Handler] queued (see
// [WithQueue]): the same dispatcher and the same dedup store, so that each
// event's callbacks succeed once across replicas, queue redeliveries and
// Stripe's duplicates days apart. Events about one object (data.object's
// id) run one at a time, across replicas, through a lock in the store. A
// failed run is retried with exponential backoff and jitter, up to
// [WithMaxAttempts]; then the event goes to the queue's dead letter. Build
// it with [NewWorker]; Run it in each process that should work.
type Worker struct {
	q    Queue
	c    *config   // the Handler's (pipe.c), shared and only read
	pipe *pipeline // the Handler's
	wc   workerConfig
	beat *renewals[Delivery, struct{}] // the deliveries held, their visibility extended (nil when the queue has no timeout)
}

// WorkerOption configures a [Worker].
type WorkerOption interface{ applyWorker(*workerConfig) }

type workerConfig struct {
	concurrency int
	maxAttempts int
	backoff     time.Duration // the first retry's delay; doubled each attempt, with jitter
	maxBackoff  time.Duration
	drain       time.Duration
}

type workerOption func(*workerConfig)

func (o workerOption) applyWorker(c *workerConfig) { o(c) }

// WithConcurrency sets how many events a Worker runs at once (default
// [DefaultConcurrency]).
func WithConcurrency(n int) WorkerOption {
	return workerOption(func(c *workerConfig) { c.concurrency = n })
}

// WithMaxAttempts sets how many times a Worker runs a failing event before
// it goes to the dead letter (default [DefaultMaxAttempts]).
func WithMaxAttempts(n int) WorkerOption {
	return workerOption(func(c *workerConfig) { c.maxAttempts = n })
}

// WithBackoff sets the first retry's delay and the longest (defaults
// [DefaultBackoff], [DefaultMaxBackoff]); each retry doubles the delay,
// with jitter.
func WithBackoff(first, max time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.backoff, c.maxBackoff = first, max })
}

// WithDrainTimeout sets how long Run lets the events in flight finish once
// its context is done (default [DefaultDrainTimeout]); past it their
// callbacks' context is cancelled and they go back to the queue.
func WithDrainTimeout(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.drain = d })
}

// NewWorker returns a Worker that runs the events h queued (h must have
// been built with [WithQueue]), with h's dispatcher, dedup store and key,
// lease, retention, logger, observer and clock: a Worker cannot end up with
// a store other than its Handler's, which would run an event once per
// store. A process that only works (serves no HTTP) builds the same Handler
// as the web process and never mounts it. NewWorker fails if h has no
// queue or no dedup store ([WithDedup](nil)), or an option is out of range.
func NewWorker(h *Handler, opts ...WorkerOption) (*Worker, error) {
	if h == nil {
		return nil, errors.New("stripewebhook: NewWorker needs the Handler whose queue it works")
	}
	wc := workerConfig{
		concurrency: DefaultConcurrency,
		maxAttempts: DefaultMaxAttempts,
		backoff:     DefaultBackoff,
		maxBackoff:  DefaultMaxBackoff,
		drain:       DefaultDrainTimeout,
	}
	for _, o := range opts {
		o.applyWorker(&wc)
	}
	switch {
	case h.c.queue == nil:
		return nil, fmt.Errorf("%w: the Handler has no queue to work (build it with WithQueue)", ErrInvalidOption)
	case h.c.store == nil:
		return nil, fmt.Errorf("%w: a worker needs a dedup store (it is what runs each event once); the Handler has WithDedup(nil)", ErrInvalidOption)
	case wc.concurrency <= 0:
		return nil, fmt.Errorf("%w: worker concurrency must be positive", ErrInvalidOption)
	case wc.maxAttempts <= 0:
		return nil, fmt.Errorf("%w: worker max attempts must be positive", ErrInvalidOption)
	case wc.backoff <= 0 || wc.maxBackoff < wc.backoff:
		return nil, fmt.Errorf("%w: worker backoff must be positive, its maximum at least the first delay", ErrInvalidOption)
	case wc.drain <= 0:
		return nil, fmt.Errorf("%w: worker drain timeout must be positive", ErrInvalidOption)
	}
	w := &Worker{q: h.c.queue, c: h.c, pipe: h.pipe, wc: wc}
	if vt := w.q.VisibilityTimeout(); vt > 0 {
		w.beat = &renewals[Delivery, struct{}]{
			every: max(vt/3, time.Millisecond),
			renew: func(ctx context.Context, d Delivery, _ struct{}) error { return d.Extend(ctx) },
			lost: func(d Delivery, err error) bool {
				w.c.logger.LogAttrs(context.Background(), slog.LevelWarn, "stripewebhook: worker: extending a delivery's visibility failed; the queue may give it to another worker, and the dedup store keeps it from running twice",
					slog.String("event_id", d.Message().ID), slog.Any("error", err))
				return false
			},
		}
	}
	return w, nil
}

// Run takes events from the queue and runs them until ctx is done; then it
// stops taking new ones, lets those in flight finish within the drain
// timeout, hands back to the queue those it holds and has not started, and
// returns nil. While the queue cannot be reached, it logs and tries again
// with backoff: an outage of the engine does not stop it. It is safe to run
// several Workers, in one process or many, on one queue.
//
// An event whose object is busy (another of its events runs here, or holds
// its lock elsewhere) or whose claim is held elsewhere waits without a
// worker slot, its visibility kept, and spends no attempt: the slots run
// the events that are ready. See schedule.
func (w *Worker) Run(ctx context.Context) error {
	// The callbacks run under runCtx: cancelled only once the drain
	// timeout has passed after ctx is done.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.wc.drain, cancelRun)
		context.AfterFunc(runCtx, func() { t.Stop() })
	})
	defer stop()

	s := newSchedule(w, ctx, runCtx)
	var wg sync.WaitGroup
	for range w.wc.concurrency {
		wg.Go(func() { s.receive() })
	}
	wg.Go(func() { s.poll() })
	wg.Wait()
	s.running.Wait() // the runs that started after a poll
	s.handBack()
	return nil
}

// step runs j: its claim and its object's lock taken without waiting, its
// callbacks, its settlement. It returns false when j must wait (its object
// busy, its claim held elsewhere), holding nothing.
func (w *Worker) step(ctx context.Context, j *job) bool {
	sctx := context.WithoutCancel(ctx) // settle even if the run was cut
	d, e := j.d, j.e
	start := time.Now()
	var rep Report
	a := attempt{
		lockKey:    lockPrefix + j.key,
		number:     d.Attempt(),
		last:       d.Attempt() >= w.wc.maxAttempts,
		enqueuedAt: d.EnqueuedAt(),
	}
	h, err := w.pipe.acquire(ctx, e, &rep, a)
	var lockErr *LockError
	switch {
	case errors.Is(err, ErrInProgress), errors.As(err, &lockErr) && lockErr.Err == nil:
		return false // held elsewhere: not an attempt
	case err == nil:
		err = w.pipe.runHeld(ctx, e, w.pipe.d.route(string(e.Type)), &rep, a, h)
	case err == errDuplicate:
		err = nil
	}
	switch {
	case err == nil:
		w.c.logger.LogAttrs(ctx, slog.LevelDebug, "stripewebhook: worker: event processed",
			slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)), slog.Int("attempt", d.Attempt()),
			slog.String("outcome", string(rep.Outcome)), slog.Duration("duration", time.Since(start)))
		w.settle(ctx, d, d.Ack(sctx))
	case errors.As(err, &lockErr), errors.Is(err, ErrAbandoned): // the store failed taking the lock; the drain timeout passed before the claim
		w.settle(ctx, d, d.Retry(sctx, w.wc.backoff))
	case errors.Is(err, ErrStoreUnavailable):
		w.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: worker: dedup store unavailable; retrying",
			slog.String("event_id", e.ID), slog.Int("attempt", d.Attempt()), slog.Any("error", err))
		w.settle(ctx, d, d.Retry(sctx, w.backoffFor(d.Attempt())))
	case d.Attempt() >= w.wc.maxAttempts:
		w.settle(ctx, d, w.deadLetter(sctx, d, err.Error()))
	default:
		w.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: worker: run failed; retrying",
			slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)), slog.Int("attempt", d.Attempt()), slog.String("error", err.Error()))
		w.settle(ctx, d, d.Retry(sctx, w.backoffFor(d.Attempt())))
	}
	return true
}

func (w *Worker) deadLetter(ctx context.Context, d Delivery, reason string) error {
	w.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: worker: event set aside in the dead letter",
		slog.String("event_id", d.Message().ID), slog.Int("attempts", d.Attempt()), slog.String("reason", reason))
	return d.DeadLetter(ctx, reason)
}

// settle logs a failure to settle a delivery: the queue delivers it again
// after its visibility timeout, and the store keeps it from running twice.
func (w *Worker) settle(ctx context.Context, d Delivery, err error) {
	if err != nil {
		w.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: worker: settling the delivery failed; the queue delivers it again",
			slog.String("event_id", d.Message().ID), slog.Any("error", err))
	}
}

// backoffFor is the delay before attempt+1: exponential, capped, with
// jitter (half to full).
func (w *Worker) backoffFor(attempt int) time.Duration {
	d := w.wc.backoff
	for i := 1; i < attempt && d < w.wc.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.wc.maxBackoff)
	return d/2 + rand.N(d/2+1)
}
