package stripewebhook

import (
	"errors"
	"net/http"
)

// errorClass is what the status policy makes of an error: the status the
// handler answers, the outcome an observer sees, the reason of a rejection
// and the response body.
type errorClass struct {
	status  int
	outcome Outcome
	reason  func(err error) Reason // for OutcomeRejected
	public  string                 // short, and never anything a callback or a store said (it may hold a DSN), nor a secret or a signature
}

// errorTable is the status policy, in order: the first row whose match
// holds classifies the error. An error is classified by where it comes
// from first: a callback's error is a 500 whatever it wraps, a store's or
// a queue's a 503. A new error touches this table only.
var errorTable = []struct {
	match func(error) bool
	class errorClass
}{
	{is[*CallbackError], errorClass{http.StatusInternalServerError, OutcomeFailed, nil, notProcessed}},
	{is[*StoreError], errorClass{http.StatusServiceUnavailable, OutcomeStoreUnavailable, nil, storeUnavailable}},
	{is[*LockError], errorClass{http.StatusConflict, OutcomeInProgress, nil, "object busy, retry later"}},
	{is[*QueueError], errorClass{http.StatusServiceUnavailable, OutcomeQueueUnavailable, nil, "queue unavailable, retry later"}},
	{is[*SourceError], errorClass{http.StatusForbidden, OutcomeRejected, because(ReasonSource), "forbidden"}},
	{is[*OriginError], errorClass{http.StatusForbidden, OutcomeRejected, because(ReasonOrigin), "untrusted origin"}},
	{isErr(ErrOverloaded), errorClass{http.StatusServiceUnavailable, OutcomeOverloaded, nil, "busy, retry later"}},
	{is[*http.MaxBytesError], errorClass{http.StatusRequestEntityTooLarge, OutcomeRejected, because(ReasonTooLarge), "body too large"}},
	{isErr(ErrNotSigned), errorClass{http.StatusBadRequest, OutcomeRejected, because(ReasonMissingHeader), "missing Stripe-Signature header"}},
	{isErr(ErrInvalidHeader), errorClass{http.StatusBadRequest, OutcomeRejected, because(ReasonMalformedHeader), "malformed Stripe-Signature header"}},
	{isErr(ErrNoValidSignature), errorClass{http.StatusBadRequest, OutcomeRejected, because(ReasonBadSignature), "no valid signature"}},
	{isErr(ErrTimestampOutsideTolerance), errorClass{http.StatusBadRequest, OutcomeRejected, staleOrFuture, "signature timestamp outside tolerance"}},
	{isErr(ErrInvalidPayload), errorClass{http.StatusBadRequest, OutcomeRejected, because(ReasonBadPayload), "invalid event payload"}},
	{isErr(ErrInProgress), errorClass{http.StatusConflict, OutcomeInProgress, nil, "event in progress, retry later"}},
	{isErr(ErrStoreUnavailable), errorClass{http.StatusServiceUnavailable, OutcomeStoreUnavailable, nil, storeUnavailable}},
	{isErr(ErrAbandoned), errorClass{http.StatusInternalServerError, OutcomeAbandoned, nil, notProcessed}},
	{isErr(ErrAPIVersionMismatch), errorClass{http.StatusInternalServerError, OutcomeHeld, nil, notProcessed}},
}

const (
	notProcessed     = "event not processed, retry later"
	storeUnavailable = "dedup store unavailable, retry later"
)

// otherError is the class of an error no row matches: a 500, so that
// Stripe retries.
var otherError = errorClass{http.StatusInternalServerError, OutcomeFailed, nil, notProcessed}

// handled is the class of nil.
var handled = errorClass{status: http.StatusOK, public: "ok"}

// classify returns err's class.
func classify(err error) errorClass {
	if err == nil {
		return handled
	}
	for _, row := range errorTable {
		if row.match(err) {
			return row.class
		}
	}
	return otherError
}

// is reports whether err's chain holds an error of type T.
func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// isErr returns a match for the errors that are target.
func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func because(r Reason) func(error) Reason { return func(error) Reason { return r } }

// staleOrFuture tells a timestamp too far in the past from one too far
// ahead.
func staleOrFuture(err error) Reason {
	var te *TimestampError
	if errors.As(err, &te) && te.Now.Before(te.Timestamp) {
		return ReasonFuture
	}
	return ReasonStale
}
