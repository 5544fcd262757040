package stripewebhook

import (
	"context"
	"time"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
)

// Observer sees every delivery the [Handler] receives and every run of an
// event's callbacks (a [Worker]'s too, with [WithObserver]), for metrics
// and traces (the otelwebhook module is one).
// Its methods are called on the request path: they must be fast and safe
// for concurrent use. An Observer must not keep the Report.
type Observer interface {
	// Start is called as a delivery arrives (OpDelivery) and as an event's
	// callbacks are about to run (OpRun, within the delivery). The context
	// it returns is used until the matching End (the callbacks get the
	// run's), so that an observer can start a span.
	Start(ctx context.Context, op Op) context.Context
	// End is called once the delivery or the run is over.
	End(ctx context.Context, r *Report)
}

// Op is what an [Observer] sees start and end.
type Op uint8

const (
	// OpDelivery is one HTTP delivery (or one Handler.Handle call).
	OpDelivery Op = iota + 1
	// OpRun is one run of an event's callbacks.
	OpRun
)

func (op Op) String() string {
	if op == OpRun {
		return "run"
	}
	return "delivery"
}

// Outcome is what became of a delivery or a run. The values are short
// and few, fit for metric labels.
type Outcome string

// Outcomes.
const (
	OutcomeHandled          Outcome = "handled"           // an exact or prefix callback ran and succeeded
	OutcomeCatchAll         Outcome = "handled_catch_all" // only catch-all or fallback callbacks ran
	OutcomeUnhandled        Outcome = "unhandled"         // no callback for the type: acknowledged
	OutcomeDuplicate        Outcome = "duplicate"         // already processed: acknowledged
	OutcomeStale            Outcome = "stale"             // older than the object's state applied: its state callbacks skipped (OnLatest), acknowledged
	OutcomeFiltered         Outcome = "filtered"          // livemode or account filter: acknowledged
	OutcomeInProgress       Outcome = "in_progress"       // being processed elsewhere (409)
	OutcomeRejected         Outcome = "rejected"          // not an authentic, well-formed delivery (4xx); see Reason
	OutcomeFailed           Outcome = "failed"            // a callback failed or panicked (500)
	OutcomeHeld             Outcome = "held"              // API version held back under WithStrictAPIVersion (500)
	OutcomeStoreUnavailable Outcome = "store_unavailable" // the dedup store failed (503)
	OutcomeQueued           Outcome = "queued"            // durably queued for a Worker (asynchronous mode)
	OutcomeQueueUnavailable Outcome = "queue_unavailable" // the queue could not accept it (503)
	OutcomeOverloaded       Outcome = "overloaded"        // the bodies in flight were at WithMaxBytesInFlight (503)
	OutcomeDeadLettered     Outcome = "dead_lettered"     // a run's last attempt failed: set aside
	OutcomeAbandoned        Outcome = "abandoned"         // the sender left before the claim
)

// Reason says why a delivery was rejected.
type Reason string

// Reasons.
const (
	ReasonMethod          Reason = "method_not_allowed"
	ReasonTooLarge        Reason = "too_large"
	ReasonMissingHeader   Reason = "missing_header"
	ReasonMalformedHeader Reason = "malformed_header"
	ReasonBadSignature    Reason = "bad_signature"
	ReasonStale           Reason = "stale"
	ReasonFuture          Reason = "future"
	ReasonBadPayload      Reason = "bad_payload"
	ReasonSource          Reason = "forbidden_source" // not from an allowed address (WithSourceFilter)
	ReasonOrigin          Reason = "untrusted_origin" // from a cloud bus source WithDestinations does not pin
)

// Report is what an [Observer] learns at the end of a delivery or a run.
type Report struct {
	Op      Op
	Event   *Event // nil if the delivery was rejected before its envelope was decoded
	Outcome Outcome
	Reason  Reason // for OutcomeRejected
	Status  int    // the HTTP status answered (deliveries)
	Err     error  // what failed, or nil; never holds a secret
	Secret  string // the name of the secret that verified the delivery

	Verify    time.Duration // signature check
	Store     time.Duration // dedup store calls (claim, complete or release)
	Callbacks time.Duration // the callbacks' run
	Total     time.Duration // the whole delivery (or run)
	EventAge  time.Duration // from the event's creation to the end, 0 if unknown

	// A Worker's runs (asynchronous mode).
	Attempt  int           // the queue's delivery attempt, 1 for the first
	QueueLag time.Duration // from the queue's accept to the run's start
}

// IsKnownType reports whether t is an event type stripe-go v82 declares,
// snapshot or thin: for observers that label metrics by type and must keep
// the label's values bounded.
func IsKnownType(t string) bool { return eventtypes.IsKnown(t) }
