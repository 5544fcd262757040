package stripewebhook

import (
	"context"
	"errors"
	"time"
)

// Queue is a durable queue for the asynchronous mode: with [WithQueue] the
// handler acknowledges a delivery once the queue has durably accepted it,
// and a [Worker] runs the callbacks later, elsewhere. The contract, which
// the queuetest conformance suite checks against each engine's real server:
//
//   - Enqueue returns nil only once the message is durably stored (a
//     committed insert, a publish acknowledgement). An error means it may
//     not be, and the handler answers 503 so that Stripe retries.
//     Enqueueing a message whose ID is already queued must not lose it.
//   - A received message is the enqueued one, every field of it.
//   - Receive blocks until a message is available or ctx is done. A
//     message received and never settled (its worker died) is received
//     again after the engine's visibility timeout (VisibilityTimeout), with
//     Attempt one higher; Extend restarts that timeout, and the Worker
//     extends every delivery it holds each third of it, so that the
//     timeout can be short (a crashed worker's events come back soon)
//     while a callback runs for as long as it needs.
//   - Each Delivery is settled once: Ack removes it; Retry makes it
//     available again after the delay, with Attempt one higher; Return
//     makes it available again at once with the same Attempt (a worker
//     stopping hands back what it has not started); DeadLetter sets it
//     aside with a reason, where DeadLetters lists it and Replay queues it
//     again as a fresh series, from Attempt 1 (an error matching
//     [ErrNoDeadLetter] when none holds the event).
//
// A Queue must be safe for concurrent use. The dedup store, not the queue,
// decides what ran: brokers forget duplicates after minutes or hours,
// Stripe retries for days.
//
// The engines of this repository (jsqueue, rivqueue, amqpqueue) and the
// stores (redisstore, pgstore) share one shape:
//
//   - New takes what connects to the server first, the caller's client,
//     which the module never closes (amqpqueue takes an amqpqueue.Dialer
//     instead, since its client does not reconnect after an outage and the
//     Queue must), with a ctx before it when New itself talks to the
//     server, then options of the module's own type Option.
//   - WithName names what the module keeps on the server (a stream, a
//     queue, a table, a key prefix), to share a server between
//     applications; DefaultName is its default.
//   - A queue's WithVisibilityTimeout is how long a received event may stay
//     unsettled before it is received again (DefaultVisibilityTimeout).
//   - A nil client or an option out of range is an error matching
//     [ErrInvalidOption] that names the option ("jsqueue.WithName: empty
//     name").
//   - A queue's Close(ctx) stops what the Queue started, after which its
//     methods return the module's ErrClosed. Stores hold nothing to close.
//   - Errors start with the module's name and wrap the client's.
type Queue interface {
	Enqueue(ctx context.Context, m Message) error
	Receive(ctx context.Context) (Delivery, error)
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	Replay(ctx context.Context, id string) error
	VisibilityTimeout() time.Duration // 0 for a queue that never gives a held message to another receiver
}

// Message is a verified event on its way to a worker.
type Message struct {
	ID      string // the event id
	Key     string // what the event is about (data.object's id, or WithLockKey's): events with one key run one at a time
	Secret  string // the name of the secret that verified it ("" for an event from a cloud bus)
	Payload []byte // the event as Stripe sent it, or the envelope it came in on Bus
	Bus     Bus    // the cloud bus whose envelope Payload is, or "" for a Stripe event
}

// Delivery is a Message received from a Queue, to be settled once.
type Delivery interface {
	Message() Message
	Attempt() int                     // 1 for the first delivery
	EnqueuedAt() time.Time            // when the queue accepted the message (its lag is measured from it)
	Extend(ctx context.Context) error // restart the visibility timeout
	Ack(ctx context.Context) error
	Retry(ctx context.Context, delay time.Duration) error
	Return(ctx context.Context) error
	DeadLetter(ctx context.Context, reason string) error
}

// DeadLetter is a message set aside after its last attempt failed.
type DeadLetter struct {
	Message
	Reason   string // the last error
	Attempts int
	At       time.Time
}

// ErrNoDeadLetter is returned (wrapped) by a Queue's Replay when no dead
// letter holds the event.
var ErrNoDeadLetter = errors.New("stripewebhook: no dead letter for the event")

// ErrQueueUnavailable is matched by every [*QueueError] (503).
var ErrQueueUnavailable = errors.New("stripewebhook: queue unavailable")

// QueueError is a failure to enqueue: the handler answers 503.
type QueueError struct{ Err error }

func (e *QueueError) Error() string        { return "stripewebhook: enqueue: " + e.Err.Error() }
func (e *QueueError) Unwrap() error        { return e.Err }
func (e *QueueError) Is(target error) bool { return target == ErrQueueUnavailable }

// objectKey is what e is about, for the per-object serialisation: its
// data.object's id, a thin event's related object, or the event itself.
func objectKey(e *Event) string {
	if e.Related != nil && e.Related.ID != "" {
		return e.Related.ID
	}
	if id := objectID(e.Object); id != "" {
		return id
	}
	return e.ID
}

// enqueue hands e to the queue.
func (h *Handler) enqueue(ctx context.Context, e *Event, rep *Report) error {
	t := h.c.clock()
	m := Message{ID: e.ID, Key: h.c.objectLock(e), Secret: e.Secret, Payload: e.Payload}
	if e.Origin != nil && e.Origin.envelope != nil { // the envelope, so that the Worker's event has its Origin
		m.Payload, m.Bus = e.Origin.envelope, e.Origin.Bus
	}
	err := h.c.queue.Enqueue(ctx, m)
	rep.Store += since(t)
	if err != nil {
		if ctx.Err() != nil {
			return abandoned(ctx)
		}
		return &QueueError{Err: err}
	}
	rep.Outcome = OutcomeQueued
	return nil
}
