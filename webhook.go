// Package stripewebhook receives Stripe webhooks: an [http.Handler] that reads
// the raw body under a cap, verifies the Stripe-Signature header against one
// or more endpoint secrets, decodes the event envelope, drops duplicates
// through a [Store] keyed on the event ID, and routes the event by type to the
// callbacks registered on a [Dispatcher].
//
// Every stage is usable on its own: [Verifier.Verify] for frameworks that own
// the body, [ParseEvent] to decode a verified payload, [Handler.Deliver] for
// events that arrive another way (a replay, a queue, a cloud bus) and must
// still be deduplicated, [Dispatcher.Dispatch] to run the callbacks alone (a
// test).
//
// In the asynchronous mode ([WithQueue]) the handler answers once the event
// is durably queued and a [Worker] runs it later. [Reconcile] recovers the
// events Stripe failed to deliver; [Refetch] and [FetchRelated] get an
// object's current state.
//
// Around the core, each in a module of its own so that importing this one
// pulls nothing but stripe-go:
//
//   - dedup stores shared by replicas: redisstore (go-redis), pgstore (pgx);
//   - durable queues for the asynchronous mode: jsqueue (NATS JetStream),
//     rivqueue (River on PostgreSQL or SQLite), amqpqueue (RabbitMQ), and
//     queueurl, which opens any of them from a URL;
//   - otelwebhook, an [Observer] exporting OpenTelemetry metrics and spans;
//   - the stripewebhook command (cmd/stripewebhook): send test deliveries,
//     replay undelivered events, check an endpoint, manage dead letters.
//
// In this module: webhooktest signs requests and fakes Stripe's API for
// tests of an application's callbacks; fixture holds realistic events and
// Stripe's signing scheme for programs; dedupstoretest and queuetest are the
// conformance suites of a [Store] and a [Queue]; groupcommit is the group
// commit the queues share.
//
// The handler answers as Stripe needs it to: 2xx for everything it accepted or
// will never be able to process (unhandled types, filtered events, duplicates),
// 4xx only for deliveries that are not authentic Stripe events, and 5xx when a
// retry can succeed (a callback failed, the dedup store is down). See
// [Handler.ServeHTTP] for the table.
package stripewebhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/stripe/stripe-go/v82"
)

// ErrInvalidPayload means the body is not a JSON event: not JSON, not an
// object, a field of the wrong type, or no id or type. It is wrapped with
// the detail.
var ErrInvalidPayload = errors.New("stripewebhook: invalid event payload")

// ErrObjectMismatch means a typed callback asked for a stripe-go type that is
// not the type of the event's data.object (a *stripe.Invoice for a
// payment_intent.succeeded, say). It is a programming error: the delivery
// fails so that it is retried once the registration is fixed.
var ErrObjectMismatch = errors.New("stripewebhook: data.object is not of the requested type")

// ErrNoObject means a callback asked for data.object of a thin event,
// which carries none: its full event and related object are fetched.
var ErrNoObject = errors.New("stripewebhook: a thin event has no data.object")

// Event is a verified Stripe event. Only the envelope is decoded; the
// resource in data.object is kept as raw bytes and decoded when a callback
// asks for it, with [Decode] or a callback registered with [On].
//
// An Event that [Handler.ServeHTTP] delivers owns its bytes: a callback may
// keep it, or hand it to a goroutine, after it returns. Its methods are not
// safe for concurrent use (Decode caches), so share a [Event.Clone] between
// goroutines. Under [Handler.Handle] and [ParseEvent], the byte slices
// alias the payload the caller passed.
type Event struct {
	Kind       EventKind        // Snapshot, or Thin for an event destination's thin event
	ID         string           // evt_…
	Type       stripe.EventType // invoice.paid, …, or v1.billing.meter.error_report_triggered, …
	APIVersion string           // the API version data.object was rendered with ("" for a thin event)
	Account    string           // the connected account (Connect; a thin event's context), or ""
	Livemode   bool
	Created    int64        // Unix seconds
	Request    EventRequest // the API request behind the event (a thin event's reason.request)

	// Related is what a thin event is about (id, type, API URL), or nil.
	Related *stripe.RelatedObject

	// Object is data.object, raw. PreviousAttributes is
	// data.previous_attributes, raw, or nil.
	Object             json.RawMessage
	PreviousAttributes json.RawMessage

	// Payload is the whole body as Stripe signed it.
	Payload []byte

	// Secret is the name of the secret that verified the delivery, or ""
	// for an event that was not verified by this package.
	Secret string

	// Origin is the cloud bus envelope the event came in (EventBridge,
	// Event Grid), or nil for a signed delivery or a fetched event. An
	// event with an Origin was not verified by a signature: see
	// [WithDestinations].
	Origin *Origin

	decoded any                  // the last typed object decoded, shared by the callbacks
	related stripe.RelatedObject // what Related points to: no allocation of its own

	// Thin events: the dispatcher's client and what it fetched, shared by
	// the callbacks.
	client        *stripe.Client
	fullEvent     any // a stripe.V2Event
	relatedObject any

	refetched any // Refetch's result, shared by the callbacks

	guard guardVerdict // the state guard's verdict on this run (guard.go)
}

// EventKind tells a snapshot event from a thin one.
type EventKind uint8

const (
	// Snapshot is a classic webhook event: data.object is a snapshot of
	// the object, rendered with the event's API version. The zero value.
	Snapshot EventKind = iota
	// Thin is an event destination's thin event ("object":
	// "v2.core.event"): a small, unversioned notification with no data,
	// whose full event and related object are fetched when needed (see
	// [FetchEvent] and [FetchRelated]).
	Thin
)

func (k EventKind) String() string {
	switch k {
	case Snapshot:
		return "snapshot"
	case Thin:
		return "thin"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// EventRequest is the API request that caused the event, if any.
type EventRequest struct {
	ID             string
	IdempotencyKey string
}

// ParseEvent decodes the envelope of a payload that has already been
// verified. It fails with an error wrapping [ErrInvalidPayload] if the
// payload is not a JSON object with an id and a type. The returned Event
// aliases payload.
func ParseEvent(payload []byte) (*Event, error) {
	e := new(Event)
	if err := parseEnvelope(payload, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Clone returns a deep copy of e whose byte slices do not alias e's, for a
// payload the caller will reuse, or for another goroutine.
func (e *Event) Clone() *Event {
	c := *e
	c.Payload = append([]byte(nil), e.Payload...)
	c.Object = rebase(c.Payload, e.Payload, e.Object)
	c.PreviousAttributes = rebase(c.Payload, e.Payload, e.PreviousAttributes)
	if e.Related != nil {
		c.related = *e.Related
		c.Related = &c.related
	}
	if e.Origin != nil {
		o := *e.Origin
		o.envelope = append([]byte(nil), o.envelope...)
		c.Origin = &o
	}
	c.decoded, c.fullEvent, c.relatedObject, c.refetched = nil, nil, nil, nil
	return &c
}

// rebase returns the slice of newBase that sub occupies in oldBase, or a copy
// of sub when it does not point into oldBase.
func rebase(newBase, oldBase, sub []byte) []byte {
	if sub == nil {
		return nil
	}
	if len(sub) > 0 && len(oldBase) > 0 {
		start := reflect.ValueOf(sub).Pointer() - reflect.ValueOf(oldBase).Pointer()
		if start < uintptr(len(oldBase)) && int(start)+len(sub) <= len(oldBase) {
			return newBase[start : int(start)+len(sub) : int(start)+len(sub)]
		}
	}
	return append([]byte(nil), sub...)
}

// Stripe decodes the whole payload as stripe-go's [stripe.Event], for code
// that already takes one. It costs a full decode of data.object, twice (as
// stripe-go does); prefer [Decode] or a typed callback on hot paths.
func (e *Event) Stripe() (*stripe.Event, error) {
	var se stripe.Event
	if err := json.Unmarshal(e.Payload, &se); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return &se, nil
}

// DecodePrevious decodes data.previous_attributes into a *T: the values
// that the fields named there had before the change (the others are left
// zero). It returns nil, nil for events that carry no previous attributes.
// Unlike [Decode], it decodes on every call.
func DecodePrevious[T any](e *Event) (*T, error) {
	if len(e.PreviousAttributes) == 0 || string(e.PreviousAttributes) == "null" {
		return nil, nil
	}
	v := new(T)
	if err := json.Unmarshal(e.PreviousAttributes, v); err != nil {
		return nil, fmt.Errorf("stripewebhook: decoding data.previous_attributes of %s as %T: %w", e.ID, v, err)
	}
	return v, nil
}

// Decode decodes data.object into a *T, such as *stripe.Invoice, once per
// event: callbacks of the same event asking for the same T share the result
// (so a callback should not modify it). When T is a stripe-go resource whose
// object name differs from data.object's "object" field, Decode fails with
// [ErrObjectMismatch].
func Decode[T any](e *Event) (*T, error) {
	if v, ok := e.decoded.(*T); ok {
		return v, nil
	}
	if e.Kind == Thin {
		return nil, fmt.Errorf("%w: %s (%s) is a thin event; fetch the event or its related object (FetchEvent, FetchRelated)", ErrNoObject, e.ID, e.Type)
	}
	if err := checkObjectType[T](e.Object); err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(e.Object, v); err != nil {
		return nil, fmt.Errorf("stripewebhook: decoding data.object of %s as %T: %w", e.ID, v, err)
	}
	e.decoded = v
	return v, nil
}

const stripePkg = "github.com/stripe/stripe-go/v82"

// checkObjectType compares the "object" field of raw with the name a
// stripe-go type stands for (Invoice → invoice, CheckoutSession →
// checkout.session). Types from other packages are not checked.
func checkObjectType[T any](raw []byte) error {
	t := reflect.TypeFor[T]()
	if t.PkgPath() != stripePkg {
		return nil
	}
	name := objectName(raw)
	if name == "" {
		return nil // not an object with a name: let the decode speak
	}
	want := snake(t.Name())
	got := strings.ReplaceAll(name, ".", "_")
	if got == want {
		return nil
	}
	if polymorphicWrapper(t.Name()) {
		return nil
	}
	return fmt.Errorf("%w: data.object is a %q, the callback takes a *stripe.%s", ErrObjectMismatch, name, t.Name())
}

// polymorphicWrapper reports whether a stripe-go type decodes several
// objects, told apart by their "object" field (a card or a bank account).
func polymorphicWrapper(name string) bool {
	switch name {
	case "AccountExternalAccount", "ExternalAccount", "PaymentSource":
		return true
	}
	return false
}

// snake turns a Go type name into Stripe's object name: PaymentIntent →
// payment_intent, TaxID → tax_id.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && !unicode.IsUpper(rs[i-1])
			nextLower := i > 0 && i+1 < len(rs) && !unicode.IsUpper(rs[i+1])
			if prevLower || nextLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
