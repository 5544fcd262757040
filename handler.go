package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// Errors that the handler maps to statuses; see [StatusCode].
var (
	// ErrInProgress means another worker is processing the same event now
	// (409: Stripe retries, and by then it is done).
	ErrInProgress = errors.New("stripewebhook: event is being processed by another worker")
	// ErrStoreUnavailable is matched by every [*StoreError] (503).
	ErrStoreUnavailable = errors.New("stripewebhook: dedup store unavailable")
	// ErrAbandoned means the delivery's context ended (the sender gave up
	// waiting) before the event was claimed: nothing ran, and Stripe's retry
	// will run it. It wraps the context's cause.
	ErrAbandoned = errors.New("stripewebhook: delivery abandoned by the sender before processing")
	// ErrAPIVersionMismatch is returned under [WithStrictAPIVersion] (500).
	ErrAPIVersionMismatch = errors.New("stripewebhook: event API version is not stripe-go's")
)

// StoreError is a dedup store failure. errors.Is(err, ErrStoreUnavailable)
// holds for it.
type StoreError struct {
	Op  string // "claim", "complete" or "release"
	Err error
}

func (e *StoreError) Error() string {
	return "stripewebhook: dedup store " + e.Op + ": " + e.Err.Error()
}
func (e *StoreError) Unwrap() error        { return e.Err }
func (e *StoreError) Is(target error) bool { return target == ErrStoreUnavailable }

// StatusCode is the status policy: the HTTP status the handler answers for
// the error that [Handler.Handle] returned. An error is classified by where
// it comes from: a callback's error is a 500 whatever it wraps, and a
// store's a 503.
//
//	nil (handled, duplicate, stale, unhandled type, filtered) 200
//	*CallbackError (a callback failed or panicked)            500
//	*StoreError (the dedup store failed), ErrOverloaded       503
//	*SourceError (WithSourceFilter)                           403
//	*OriginError (a cloud bus event WithDestinations refuses) 403
//	*http.MaxBytesError (body over the cap)                   413
//	ErrNotSigned, ErrInvalidHeader, ErrNoValidSignature,
//	ErrTimestampOutsideTolerance, ErrInvalidPayload           400
//	ErrInProgress, *LockError (its object's lock held)        409
//	anything else (API version under WithStrictAPIVersion, …) 500
func StatusCode(err error) int { return classify(err).status }

// Handler is an [http.Handler] that receives Stripe webhooks. Build it with
// [NewHandler]; it is safe for concurrent use.
type Handler struct {
	verifier   *Verifier
	dispatcher *Dispatcher
	c          *config
	pipe       *pipeline // shared with the Handler's Workers
	versions   versionWarnings
	rejections rejectionLog // rejected deliveries
	refusals   rejectionLog // deliveries the queue or the byte budget could not take (503)
	inFlight   inFlight     // the body bytes the deliveries being served hold
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler that verifies deliveries with secrets and
// routes them with d. It fails, saying what is wrong, if a secret is
// missing or cannot be an endpoint secret, an option is out of range, a
// registration on d failed, or d has no callback at all. d's routing table
// is fixed from then on.
func NewHandler(d *Dispatcher, secrets []Secret, opts ...HandlerOption) (*Handler, error) {
	if d == nil {
		return nil, errors.New("stripewebhook: nil Dispatcher")
	}
	c := newConfig(opts)
	var v *Verifier // nil: a Handler for cloud buses only
	if len(secrets) > 0 || c.destinations == nil {
		var err error
		if v, err = c.verifier(secrets); err != nil {
			return nil, err
		}
	}
	if err := c.prepare(d); err != nil {
		return nil, err
	}
	if d.empty() {
		return nil, ErrNoCallbacks
	}
	h := &Handler{verifier: v, dispatcher: d, c: c, pipe: newPipeline(c, d)}
	h.inFlight.max = c.maxInFlight
	return h, nil
}

// ServeHTTP receives one delivery. Mount it for POST only or not: other
// methods get 405 with Allow: POST. Before a byte of the body is read, a
// delivery from a source [WithSourceFilter] does not allow gets 403, and
// one whose Stripe-Signature is missing, malformed or outside the
// tolerance gets 400 (a forged header with a stale timestamp says so,
// rather than that its signature is wrong), each with its connection
// closed; one that would take the bodies in flight past
// [WithMaxBytesInFlight] gets 503 with Retry-After. The body is then read
// once, under the cap and within the read timeout ([WithReadTimeout]).
// Statuses follow [StatusCode].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	if h.c.observer != nil {
		ctx = h.c.observer.Start(ctx, OpDelivery)
	}
	rep := Report{Op: OpDelivery}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		rep.Status, rep.Outcome, rep.Reason = http.StatusMethodNotAllowed, OutcomeRejected, ReasonMethod
		h.finish(ctx, r, &rep, nil, "", errMethod, start)
		return
	}
	header := r.Header.Get(SignatureHeader)
	var body []byte
	err := h.admit(r, header)
	if err != nil {
		// Refused on the request line and headers: the body is not read, and
		// the connection closes rather than wait for it.
		refuseBody(w)
	} else {
		res := reservation{b: &h.inFlight}
		defer res.done()
		body, err = h.readBody(w, r, &res)
		if err == nil {
			err = h.process(ctx, body, header, &rep)
		}
	}
	class := classify(err)
	if errors.Is(err, ErrOverloaded) {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(class.status)
	io.WriteString(w, class.public+"\n")
	h.finish(ctx, r, &rep, body, header, err, start)
}

// admit is what a delivery must pass before its body is read: an allowed
// source ([WithSourceFilter]), and a Stripe-Signature header whose form
// and timestamp could verify.
func (h *Handler) admit(r *http.Request, header string) error {
	if h.c.sources != nil {
		if err := h.c.sources.Check(r); err != nil {
			return err
		}
	}
	if h.verifier == nil {
		return errBusOnly
	}
	return h.verifier.checkHeader(header)
}

// errBusOnly answers a signed delivery to a Handler built with no secret.
var errBusOnly = fmt.Errorf("%w: this Handler takes events from cloud buses only (built with no secret)", ErrNoSecret)

// refuseBody closes the connection after the response without reading
// the body: net/http would otherwise read up to 256 KiB of it once the
// handler returns, waiting as long as the client sends nothing.
func refuseBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now()) // ErrNotSupported: a recorder, a wrapper
}

// errMethod is what the observer and the error hook see for a 405.
var errMethod = errors.New("stripewebhook: method not allowed")

// Handle processes one delivery whose body the caller already read, for
// frameworks and platforms that own it (a serverless function, say). It
// verifies, decodes, dedups and dispatches exactly as ServeHTTP does, and
// returns the error to answer with [StatusCode]. payload must be the raw
// body; the Event the callbacks receive aliases it.
func (h *Handler) Handle(ctx context.Context, payload []byte, signature string) error {
	return h.observed(ctx, payload, signature, func(ctx context.Context, rep *Report) error {
		if int64(len(payload)) > h.c.maxBody {
			return &http.MaxBytesError{Limit: h.c.maxBody}
		}
		return h.process(ctx, payload, signature, rep)
	})
}

// Deliver runs an event that arrived another way than a signed delivery (a
// replay of the Events API, a queue of the application's own, a cloud
// event bus) through the same pipeline as a delivery after its signature:
// the livemode and account filters, the dedup store (so that an event that
// also arrives by webhook runs once), the callbacks, or the queue in the
// asynchronous mode. It returns the error to answer with [StatusCode]; the
// observer and the logs see it as a delivery. The caller vouches for e:
// nothing here verifies it. [Dispatcher.Dispatch] runs the callbacks alone,
// without any of that.
//
// An event from a cloud bus (e.Origin set, by [ParseEventBridge] or
// [ParseEventGrid]) runs only if its destination (and, on EventBridge, its
// AWS account) is one the Handler pins ([WithDestinations],
// [WithAWSAccounts]); otherwise Deliver returns an [*OriginError] (403)
// and nothing runs. Dedup is on the Stripe event's id, so that an event
// that arrives both by webhook and through a bus runs once.
func (h *Handler) Deliver(ctx context.Context, e *Event) error {
	return h.observed(ctx, nil, "", func(ctx context.Context, rep *Report) error {
		rep.Secret = e.Secret
		if e.Origin != nil {
			rep.Event = e
			if err := h.c.trust(e.Origin); err != nil {
				return err
			}
		}
		return h.deliver(ctx, e, rep)
	})
}

// observed runs work as one delivery that is not an HTTP request (Handle,
// Deliver): the observer's span and report, the log line and the error
// hook, as ServeHTTP has them.
func (h *Handler) observed(ctx context.Context, body []byte, header string, work func(context.Context, *Report) error) error {
	start := time.Now()
	if h.c.observer != nil {
		ctx = h.c.observer.Start(ctx, OpDelivery)
	}
	rep := Report{Op: OpDelivery}
	err := work(ctx, &rep)
	h.finish(ctx, nil, &rep, body, header, err, start)
	return err
}

// bodyChunk is the first allocation for a body and the most the buffer
// grows ahead of what has arrived: memory follows the bytes received, not
// the Content-Length a client declares. Nearly every event fits in one.
const bodyChunk = 32 << 10

// readBody reads the whole body, up to the cap, within the read timeout.
// The buffer is the event's own (not pooled), so that an Event kept after
// its callbacks return stays valid.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, res *reservation) ([]byte, error) {
	limit := h.c.maxBody
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength > 0 && !res.grow(r.ContentLength+1) { // +1: readAll's room for EOF
		refuseBody(w)
		return nil, ErrOverloaded
	}
	rc := http.NewResponseController(w)
	if d := h.c.readTimeout; d > 0 && !serverReadTimeoutWithin(r, d) {
		_ = rc.SetReadDeadline(time.Now().Add(d)) // ErrNotSupported: a recorder, a wrapper
	}
	body, err := readAll(r, limit, res)
	if err != nil {
		// Leave the deadline in force and drop the connection: net/http
		// would otherwise wait for the rest of the body to reuse it.
		w.Header().Set("Connection", "close")
		return nil, err
	}
	// Once the body is in, no read deadline (ours or the server's
	// ReadTimeout) may end the request while the callbacks run: net/http
	// cancels the request's context when its background read times out.
	_ = rc.SetReadDeadline(time.Time{})
	return body, nil
}

// readAll reads r's body up to limit bytes, growing its buffer as bytes
// arrive, each growth taken from res first.
func readAll(r *http.Request, limit int64, res *reservation) ([]byte, error) {
	size := int64(bodyChunk)
	if r.ContentLength >= 0 && r.ContentLength < size {
		size = r.ContentLength + 1 // room to read EOF without growing
	}
	if !res.grow(size) {
		return nil, ErrOverloaded
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, &http.MaxBytesError{Limit: limit}
			}
			grow := min(cap(buf), bodyChunk*8)
			if r.ContentLength > int64(len(buf)) {
				grow = int(min(int64(grow), r.ContentLength-int64(len(buf))+1))
			}
			if !res.grow(int64(cap(buf) + grow)) {
				return nil, ErrOverloaded
			}
			buf = append(buf[:cap(buf)], make([]byte, grow)...)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			// %w twice: a middleware's http.MaxBytesReader stays a 413.
			return nil, fmt.Errorf("%w: reading body: %w", ErrInvalidPayload, err)
		}
	}
}

// serverReadTimeoutWithin reports whether the server serving r has a
// ReadTimeout no longer than d, which a per-request deadline of d must
// not extend.
func serverReadTimeoutWithin(r *http.Request, d time.Duration) bool {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	return ok && srv.ReadTimeout > 0 && srv.ReadTimeout <= d
}

// process is the request path after the body is read: verify, decode,
// filter, claim, dispatch, complete or release. It fills rep with what
// happened.
func (h *Handler) process(ctx context.Context, body []byte, header string, rep *Report) error {
	if h.verifier == nil {
		return errBusOnly
	}
	t := h.c.clock()
	ver, err := h.verifier.Verify(body, header)
	rep.Verify = since(t)
	if err != nil {
		return err
	}
	e := new(Event)
	if err := parseEnvelope(body, e); err != nil {
		return err
	}
	e.Secret = ver.Secret
	rep.Secret = ver.Secret
	return h.deliver(ctx, e, rep)
}

// deliver runs a verified (or fetched) event through the filters, the
// dedup store and the callbacks, as a delivery does.
func (h *Handler) deliver(ctx context.Context, e *Event, rep *Report) error {
	rep.Event = e
	if (h.c.livemode != nil && e.Livemode != *h.c.livemode) || (h.c.accounts != nil && !h.c.accounts[e.Account]) {
		rep.Outcome = OutcomeFiltered
		return nil
	}
	r := h.dispatcher.route(string(e.Type))
	if len(r.fns) == 0 {
		// Nothing would run: acknowledge without touching the store, and
		// without holding it back for its API version.
		rep.Outcome = OutcomeUnhandled
		return nil
	}
	if err := h.checkAPIVersion(ctx, e); err != nil {
		return err
	}
	if h.c.queue != nil {
		return h.enqueue(ctx, e, rep)
	}
	a := attempt{failOpen: h.c.failOpen}
	if r.state { // the state guard's check and advance go under the object's lock
		a.lockKey, a.lockWait = lockPrefix+h.c.objectLock(e), h.c.lockWait
	}
	return h.pipe.deliver(ctx, e, r, rep, a)
}

// checkAPIVersion holds back, under WithStrictAPIVersion, a snapshot event
// rendered with an API version of another release train; otherwise it logs
// the mismatch once per version. Thin events are unversioned.
func (h *Handler) checkAPIVersion(ctx context.Context, e *Event) error {
	if e.Kind == Thin || e.APIVersion == stripe.APIVersion || sameReleaseTrain(e.APIVersion) {
		return nil
	}
	if h.c.strictAPIVersion {
		return fmt.Errorf("%w: event has %q, stripe-go v82 expects %q", ErrAPIVersionMismatch, e.APIVersion, stripe.APIVersion)
	}
	if h.versions.first(e.APIVersion) {
		h.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: event API version differs from stripe-go's; typed objects may decode wrongly",
			slog.String("event_id", e.ID), slog.String("api_version", e.APIVersion), slog.String("expected", stripe.APIVersion))
	}
	return nil
}

// maxVersionWarnings bounds the API versions remembered as already logged:
// there are a handful of real ones, and a sender that makes up versions
// must not grow the set without bound.
const maxVersionWarnings = 64

// versionWarnings remembers the API versions already logged, up to
// maxVersionWarnings; past that, every other version is taken as seen.
type versionWarnings struct {
	mu   sync.Mutex
	seen map[string]bool
}

// first reports whether v is seen for the first time and should be logged.
func (w *versionWarnings) first(v string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[v] || len(w.seen) >= maxVersionWarnings {
		return false
	}
	if w.seen == nil {
		w.seen = make(map[string]bool)
	}
	w.seen[v] = true
	return true
}

// sameReleaseTrain reports whether v is on stripe-go's release train
// ("2025-08-27.basil" and "2025-09-30.basil" are).
func sameReleaseTrain(v string) bool {
	_, train, ok := strings.Cut(stripe.APIVersion, ".")
	_, vtrain, vok := strings.Cut(v, ".")
	return ok && vok && train == vtrain && train != "preview"
}

// finish completes rep, logs the delivery, and calls the error hook and
// the observer.
func (h *Handler) finish(ctx context.Context, r *http.Request, rep *Report, body []byte, header string, err error, start time.Time) {
	class := classify(err)
	if rep.Status == 0 {
		rep.Status = class.status
	}
	rep.Err = err
	if err != nil && rep.Outcome != OutcomeRejected { // a 405 is rejected before there is an error
		rep.Outcome = class.outcome
		if class.reason != nil {
			rep.Reason = class.reason(err)
		}
	}
	rep.Total = time.Since(start)
	rep.EventAge = h.c.age(rep.Event)
	h.log(ctx, rep, body, header)
	if err != nil && h.c.onError != nil {
		h.c.onError(r, rep.Event, err)
	}
	if h.c.observer != nil {
		h.c.observer.End(ctx, rep)
	}
}

// log writes one line per delivery: successes at Debug, rejections and
// refusals (the queue unavailable, the byte budget spent: 503) at Warn
// (rate-limited, each kind on its own, with a summary of what was not
// logged), failures at Error, and what Stripe's retry settles (409,
// abandoned) at Info.
func (h *Handler) log(ctx context.Context, rep *Report, body []byte, header string) {
	level := slog.LevelDebug
	limit, kind := &h.rejections, rep.Reason
	switch rep.Outcome {
	case OutcomeRejected:
		level = slog.LevelWarn
	case OutcomeQueueUnavailable, OutcomeOverloaded:
		level, limit, kind = slog.LevelWarn, &h.refusals, Reason(rep.Outcome)
	case OutcomeInProgress, OutcomeAbandoned:
		level = slog.LevelInfo
	case OutcomeFailed, OutcomeHeld, OutcomeStoreUnavailable:
		level = slog.LevelError
	}
	if !h.c.logger.Enabled(ctx, level) {
		return
	}
	if level == slog.LevelWarn {
		ok, suppressed, since := limit.allow(h.c.now(), kind)
		if suppressed != nil {
			attrs := []slog.Attr{slog.Duration("over", since)}
			for reason, n := range suppressed {
				attrs = append(attrs, slog.Int(string(reason), n))
			}
			what := "rejected"
			if limit == &h.refusals {
				what = "refused (503)"
			}
			h.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: "+what+" deliveries not logged one by one", attrs...)
		}
		if !ok {
			return
		}
	}
	attrs := make([]slog.Attr, 0, 10)
	if e := rep.Event; e != nil {
		attrs = append(attrs, slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)), slog.String("secret", e.Secret))
	}
	attrs = append(attrs, slog.Int("status", rep.Status), slog.Duration("duration", rep.Total), slog.String("outcome", string(rep.Outcome)))
	if rep.Reason != "" {
		attrs = append(attrs, slog.String("reason", string(rep.Reason)))
	}
	if err := rep.Err; err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		var p *PanicError
		if errors.As(err, &p) {
			attrs = append(attrs, slog.String("stack", string(p.Stack)))
		}
		if rep.Reason == ReasonBadSignature {
			attrs = append(attrs, signatureHints(body, header, h.c.now())...)
		}
	}
	h.c.logger.LogAttrs(ctx, level, "stripe webhook", attrs...)
}
