package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// pipeline is the one protocol that runs an event's callbacks: claim the
// event's dedup key, take its object's lock, run the callbacks, then
// complete the claim or release it. The Handler (a synchronous delivery)
// and the Worker (a queued one) both run it; they differ only in what they
// make of its result (a status code, or an ack, a retry or a dead letter).
type pipeline struct {
	c     *config
	d     *Dispatcher
	renew *renewals[string, string] // the claims and locks held: key → token
}

// attempt is what a caller knows of this run of an event.
type attempt struct {
	failOpen   bool          // on a store failure, run without dedup instead of failing
	lockKey    string        // the object's lock, held around the run ("" for none)
	lockWait   time.Duration // how long to wait for it
	number     int           // the queue's attempt (0 for a synchronous delivery)
	last       bool          // no attempt follows a failure of this one
	enqueuedAt time.Time     // when the queue took the event (zero for none)
}

// hold is what a run holds while its callbacks run: the event's claim
// and its object's lock, each renewed while held (renewals), released or
// completed by settle.
type hold struct {
	key, token         string // the event's claim ("" when it runs without one)
	lockKey, lockToken string // the object's lock ("" for none)
}

// errDuplicate is acquire's word for an event done already.
var errDuplicate = errors.New("stripewebhook: done already")

// deliver runs e's route r through the protocol and fills rep. It returns
// nil when the callbacks succeeded or the event was done already
// (rep.Outcome says which), [ErrInProgress] when another delivery holds
// the claim, a [*StoreError] when the store failed (unless a.failOpen),
// [ErrAbandoned] when ctx ended before the claim, a [*LockError] when the
// object's lock could not be had, and the callbacks' error otherwise. The
// claim is released whenever the callbacks did not succeed, and settled
// even if ctx ends meanwhile.
func (p *pipeline) deliver(ctx context.Context, e *Event, r route, rep *Report, a attempt) error {
	h, err := p.acquire(ctx, e, rep, a)
	switch {
	case err == errDuplicate:
		return nil
	case err != nil:
		return err
	}
	return p.runHeld(ctx, e, r, rep, a, h)
}

// acquire claims e's dedup key, then takes its object's lock (waiting up
// to a.lockWait while another run holds it), and renews both until
// runHeld settles them. It returns errDuplicate (rep.Outcome set) for an
// event done already, and deliver's errors otherwise; on an error it holds
// nothing: a claim whose lock could not be had is released, not held
// while waiting.
func (p *pipeline) acquire(ctx context.Context, e *Event, rep *Report, a attempt) (hold, error) {
	store := p.c.store
	if store == nil {
		return hold{}, nil
	}
	key := p.dedupKey(e)
	if ctx.Err() != nil {
		return hold{}, abandoned(ctx)
	}
	t := p.c.clock()
	claim, err := store.Claim(ctx, key, p.c.lease)
	rep.Store = since(t)
	if err != nil {
		if ctx.Err() != nil { // the sender left, the store is fine
			return hold{}, abandoned(ctx)
		}
		err = &StoreError{Op: "claim", Err: err}
		if !a.failOpen {
			return hold{}, err
		}
		p.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: dedup store unavailable; processing without dedup (fail open)",
			slog.String("event_id", e.ID), slog.Any("error", err))
		return hold{}, nil
	}
	switch claim.Status {
	case Done:
		rep.Outcome = OutcomeDuplicate
		return hold{}, errDuplicate
	case InProgress:
		return hold{}, ErrInProgress
	}
	h := hold{key: key, token: claim.Token}
	p.renew.hold(key, claim.Token)
	if a.lockKey != "" {
		token, err := p.lock(ctx, a.lockKey, a.lockWait)
		if err != nil {
			p.release(ctx, e, h.key, h.token, "claim")
			return hold{}, err
		}
		h.lockKey, h.lockToken = a.lockKey, token
		p.renew.hold(a.lockKey, token)
	}
	return h, nil
}

// runHeld runs the callbacks under the state guard with h held, then
// settles h: the lock released, the claim completed when the callbacks
// succeeded and released otherwise, even if ctx ends meanwhile (Stripe
// gave up waiting, the worker is draining): without its cancellation,
// within the store client's own timeouts.
func (p *pipeline) runHeld(ctx context.Context, e *Event, r route, rep *Report, a attempt, h hold) error {
	sctx := context.WithoutCancel(ctx)
	runErr := p.guard(ctx, sctx, e, r, rep, a)
	if h.key == "" {
		return runErr
	}
	t := p.c.clock()
	defer func() { rep.Store += since(t) }()
	if h.lockKey != "" {
		p.release(sctx, e, h.lockKey, h.lockToken, "object's lock")
	}
	if runErr != nil {
		p.release(sctx, e, h.key, h.token, "claim")
		return runErr
	}
	p.renew.drop(h.key)
	if err := p.c.store.Complete(sctx, h.key, h.token, p.c.retention); err != nil {
		// The callbacks succeeded: acknowledge, so that the event does not
		// run again now, and say that a late duplicate may still get through.
		p.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: marking the event done failed; a later duplicate may run again",
			slog.String("event_id", e.ID), slog.Any("error", &StoreError{Op: "complete", Err: err}))
	}
	return nil
}

// release stops renewing key and releases it; what (the claim, the
// object's lock) names it in the log when that fails.
func (p *pipeline) release(ctx context.Context, e *Event, key, token, what string) {
	p.renew.drop(key)
	if err := p.c.store.Release(context.WithoutCancel(ctx), key, token); err != nil {
		p.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: releasing the "+what+" failed; it is free again once the lease expires",
			slog.String("event_id", e.ID), slog.Any("error", &StoreError{Op: "release", Err: err}))
	}
}

// dedupKey is the key of e's claim: WithDedupKey's, or the event id when
// it gives none.
func (p *pipeline) dedupKey(e *Event) string {
	if p.c.dedupKey != nil {
		if k := p.c.dedupKey(e); k != "" {
			return k
		}
	}
	return e.ID
}

// newPipeline returns the pipeline of c and d, renewing its claims and
// locks every third of the lease.
func newPipeline(c *config, d *Dispatcher) *pipeline {
	p := &pipeline{c: c, d: d}
	p.renew = &renewals[string, string]{
		every: max(c.lease/3, time.Millisecond),
		renew: func(ctx context.Context, key, token string) error {
			return c.store.Extend(ctx, key, token, c.lease)
		},
		lost: func(key string, err error) bool {
			if errors.Is(err, ErrClaimLost) {
				c.logger.LogAttrs(context.Background(), slog.LevelError, "stripewebhook: a claim or lock held by a run in flight was lost before it ended (its lease expired, and another delivery took it); the event may run twice",
					slog.String("key", key))
				return true
			}
			c.logger.LogAttrs(context.Background(), slog.LevelWarn, "stripewebhook: renewing a claim or lock failed; trying again",
				slog.String("key", key), slog.Any("error", &StoreError{Op: "extend", Err: err}))
			return false
		},
	}
	return p
}

// lockPoll is how often a run checks an object's lock held elsewhere.
const lockPoll = 20 * time.Millisecond

// LockError means an event's object lock could not be taken: another run
// about the same object held it for longer than the wait, or the store
// failed. The event is retried: a synchronous delivery gets 409 (503 when
// the store failed), a queued one is retried by the worker.
type LockError struct {
	Key string
	Err error // the store's error, or nil when the lock stayed held
}

func (e *LockError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("stripewebhook: object lock %s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("stripewebhook: object lock %s held by another run for longer than the wait", e.Key)
}

func (e *LockError) Unwrap() error { return e.Err }

// lock takes the object's lock, waiting while another run holds it, up to
// wait.
func (p *pipeline) lock(ctx context.Context, key string, wait time.Duration) (string, error) {
	deadline := p.c.now().Add(wait)
	for {
		c, err := p.c.store.Claim(ctx, key, p.c.lease)
		if err != nil {
			return "", &LockError{Key: key, Err: &StoreError{Op: "claim", Err: err}}
		}
		if c.Status == Claimed {
			return c.Token, nil
		}
		if p.c.now().After(deadline) {
			return "", &LockError{Key: key}
		}
		select {
		case <-ctx.Done():
			return "", &LockError{Key: key, Err: ctx.Err()}
		case <-time.After(lockPoll):
		}
	}
}

// run runs e's callbacks, observed as a run (with the attempt and the
// queue's lag, when queued) when there is an observer.
func (p *pipeline) run(ctx context.Context, e *Event, r route, rep *Report, a attempt) error {
	t := p.c.clock()
	obs := p.c.observer
	if obs != nil {
		ctx = obs.Start(ctx, OpRun)
	}
	outcome, err := p.d.run(ctx, e, r)
	rep.Callbacks, rep.Outcome = since(t), outcome
	if obs != nil {
		rr := Report{Op: OpRun, Event: e, Outcome: outcome, Err: err, Secret: e.Secret, Attempt: a.number,
			Callbacks: rep.Callbacks, Total: rep.Callbacks, EventAge: p.c.age(e)}
		if !a.enqueuedAt.IsZero() {
			rr.QueueLag = t.Sub(a.enqueuedAt)
		}
		if err != nil {
			rr.Outcome = OutcomeFailed
			if a.last {
				rr.Outcome = OutcomeDeadLettered
			}
		}
		obs.End(ctx, &rr)
	}
	return err
}

// clock returns the time when an observer wants durations, and the zero
// time otherwise, so that an unobserved pipeline reads no clock for them.
func (c *config) clock() time.Time {
	if c.observer == nil {
		return time.Time{}
	}
	return time.Now()
}

// since is the time elapsed from t, or 0 for the zero time.
func since(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return time.Since(t)
}

// age is the time since e was created, or 0 if unknown.
func (c *config) age(e *Event) time.Duration {
	if e == nil || e.Created <= 0 {
		return 0
	}
	return c.now().Sub(time.Unix(e.Created, 0))
}

// abandoned is the error for a delivery whose context ended before its
// claim.
func abandoned(ctx context.Context) error {
	return fmt.Errorf("%w: %w", ErrAbandoned, context.Cause(ctx))
}
