package stripewebhook

import (
	"context"
	"log/slog"
	"reflect"
	"time"
)

// OnLatest registers fn as a state callback: one that syncs what the
// application holds of data.object (a subscription's status, say) from the
// event's snapshot, so that it must never apply a snapshot older than one
// it already applied. Stripe does not deliver in order and retries for
// days: a customer.subscription.updated with status "trialing" may arrive
// after the one with "active", an updated after the deleted.
//
// For each object, the handler's store (a [StateStore]: every store of this
// repository is one) keeps the newest snapshot its state callbacks applied
// (the event's created and id). Holding the object's lock, it compares the
// event with it:
//
//   - Older (an earlier created): the event is stale and fn does not run
//     with it; the delivery is acknowledged with the outcome
//     [OutcomeStale] and logged at Info. With [WithRefetchStale], fn runs
//     instead with the object as it is now, fetched through the
//     dispatcher's client ([Refetch]).
//   - The same second (created is whole seconds, and several events about
//     one object often share it; their ids do not order them): which is
//     newer cannot be told. With WithRefetchStale, fn runs with the
//     object fetched now. Without, fn runs with the event's snapshot: the
//     guard only skips what is known to be older, since a skipped snapshot
//     that was the newest would never be applied.
//   - Newer: fn runs with the event's snapshot.
//
// The mark advances to the event only when every callback succeeded, so
// that a failed run leaves it for Stripe's retry, and it is kept for the
// dedup retention ([WithRetention], at least Stripe's three days of
// retries). Callbacks registered with
// [On] or [Dispatcher.HandleFunc] are actions (send the receipt for
// invoice.paid) and run for every event, stale or not: staleness is about
// state, not events. [Dispatcher.Dispatch], which has no store, runs an
// OnLatest callback as On does.
//
// The lock is the object's (data.object's id, or what [WithLockKey] groups
// it under), held in the asynchronous mode around every run and in the
// synchronous mode around the runs of events with a state callback: a
// delivery waits for it up to [WithLockWait], then gets 409 and Stripe's
// retry.
func OnLatest[T any](d *Dispatcher, pattern string, fn func(ctx context.Context, e *Event, obj *T) error) error {
	if err := checkRegistration(pattern, reflect.TypeFor[T]()); err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.record(err)
	}
	return d.add(pattern, callback{state: true, fn: func(ctx context.Context, e *Event) error {
		var obj *T
		var err error
		if e.guard == guardRefetch {
			obj, err = Refetch[T](ctx, e.client, e)
		} else {
			obj, err = Decode[T](e)
		}
		if err != nil {
			return err
		}
		return fn(ctx, e, obj)
	}})
}

// guardVerdict is what the state guard made of an event, for its state
// callbacks.
type guardVerdict uint8

const (
	guardApply   guardVerdict = iota // run with the event's snapshot
	guardStale                       // skip: older than the object's state applied
	guardRefetch                     // run with the object fetched now
)

// DefaultLockWait is how long a synchronous delivery waits for its
// object's lock before answering 409 (see [WithLockWait]).
const DefaultLockWait = 2 * time.Second

// stateKey is the key of e's object's state mark, or "" for an event
// with no object to keep a state of (a thin event).
func stateKey(e *Event) string {
	if e.Kind == Thin {
		return ""
	}
	return objectID(e.Object)
}

// guard runs e's route r under the state guard: it reads the object's
// mark, sets e's verdict, runs, and advances the mark when the state
// callbacks applied a snapshot and everything succeeded. The caller holds
// the object's lock. Without a StateStore, or for an event with no object,
// the route runs unguarded.
func (p *pipeline) guard(ctx, sctx context.Context, e *Event, r route, rep *Report, a attempt) error {
	ss, ok := p.c.store.(StateStore)
	if !r.state || !ok {
		return p.run(ctx, e, r, rep, a)
	}
	key := stateKey(e)
	if key == "" {
		return p.run(ctx, e, r, rep, a)
	}
	t := p.c.clock()
	last, err := ss.LastApplied(ctx, key)
	rep.Store += since(t)
	if err != nil {
		if ctx.Err() != nil {
			return abandoned(ctx)
		}
		return &StoreError{Op: "last applied", Err: err}
	}
	switch {
	case last.EventID == "" || e.Created > last.Created || last.EventID == e.ID:
		e.guard = guardApply
	case p.c.refetchStale:
		e.guard = guardRefetch
	case e.Created == last.Created:
		e.guard = guardApply // a tie: only what is known older is skipped
	default:
		e.guard = guardStale
	}
	if err := p.run(ctx, e, r, rep, a); err != nil || e.guard == guardStale {
		if err == nil {
			p.c.logger.LogAttrs(ctx, slog.LevelInfo, "stripewebhook: stale snapshot; its state callbacks skipped",
				slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)), slog.String("object", key),
				slog.Int64("created", e.Created), slog.Int64("applied_created", last.Created), slog.String("applied_event", last.EventID))
		}
		return err
	}
	t = p.c.clock()
	_, err = ss.Advance(sctx, key, Mark{Created: e.Created, EventID: e.ID}, p.c.retention)
	rep.Store += since(t)
	if err != nil {
		// The callbacks succeeded: acknowledge, and say that an older
		// snapshot may still be applied after this one.
		p.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: advancing the object's state mark failed; an older snapshot may be applied after this one",
			slog.String("event_id", e.ID), slog.String("object", key), slog.Any("error", &StoreError{Op: "advance", Err: err}))
	}
	return nil
}
