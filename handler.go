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
// the error that [Handler.Handle] returned.
//
//	nil (handled, duplicate, unhandled type, filtered)        200
//	*http.MaxBytesError (body over the cap)                   413
//	ErrNotSigned, ErrInvalidHeader, ErrNoValidSignature,
//	ErrTimestampOutsideTolerance, ErrInvalidPayload           400
//	ErrInProgress                                             409
//	ErrStoreUnavailable                                       503
//	anything else (a callback's error or panic, …)            500
func StatusCode(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case isBadRequest(err):
		return http.StatusBadRequest
	case errors.Is(err, ErrInProgress):
		return http.StatusConflict
	case errors.Is(err, ErrStoreUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func isBadRequest(err error) bool {
	return errors.Is(err, ErrNotSigned) || errors.Is(err, ErrInvalidHeader) ||
		errors.Is(err, ErrNoValidSignature) || errors.Is(err, ErrTimestampOutsideTolerance) ||
		errors.Is(err, ErrInvalidPayload)
}

// publicMessage is the response body: short, and never anything a callback
// or a store said (it may hold a DSN), nor a secret or a signature.
func publicMessage(status int, err error) string {
	switch status {
	case http.StatusOK:
		return "ok"
	case http.StatusBadRequest:
		switch {
		case errors.Is(err, ErrNotSigned):
			return "missing Stripe-Signature header"
		case errors.Is(err, ErrInvalidHeader):
			return "malformed Stripe-Signature header"
		case errors.Is(err, ErrNoValidSignature):
			return "no valid signature"
		case errors.Is(err, ErrTimestampOutsideTolerance):
			return "signature timestamp outside tolerance"
		}
		return "invalid event payload"
	case http.StatusRequestEntityTooLarge:
		return "body too large"
	case http.StatusConflict:
		return "event in progress, retry later"
	case http.StatusServiceUnavailable:
		return "dedup store unavailable, retry later"
	}
	return "event not processed, retry later"
}

// Handler is an [http.Handler] that receives Stripe webhooks. Build it with
// [NewHandler]; it is safe for concurrent use.
type Handler struct {
	verifier   *Verifier
	dispatcher *Dispatcher
	c          *config
	bufs       sync.Pool // of *[]byte
	events     sync.Pool // of *Event
	warned     sync.Map  // API versions already logged as mismatched
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler that verifies deliveries with secrets and
// routes them with d. It fails if a secret is empty or missing, an option is
// out of range, or a registration on d failed. d's routing table is fixed
// from then on.
func NewHandler(d *Dispatcher, secrets []Secret, opts ...Option) (*Handler, error) {
	if d == nil {
		return nil, errors.New("stripewebhook: nil Dispatcher")
	}
	c := newConfig(opts)
	v, err := c.verifier(secrets)
	if err != nil {
		return nil, err
	}
	if c.maxBody <= 0 {
		return nil, errors.New("stripewebhook: max body bytes must be positive")
	}
	if c.lease <= 0 || c.retention <= 0 {
		return nil, errors.New("stripewebhook: dedup lease and retention must be positive")
	}
	if !c.storeSet {
		c.store = NewMemoryStore(0, WithClock(c.now))
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	d.start()
	if d.startErr != nil {
		return nil, d.startErr
	}
	return &Handler{verifier: v, dispatcher: d, c: c}, nil
}

// ServeHTTP receives one delivery. Mount it for POST only or not: other
// methods get 405 with Allow: POST. The body is read once, under the cap,
// before anything else. Statuses follow [StatusCode].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	bp := h.getBuf()
	defer h.bufs.Put(bp)
	body, err := readBody(r, h.c.maxBody, bp)
	var e *Event
	var outcome string
	if err == nil {
		e, outcome, err = h.process(r.Context(), body, r.Header.Get(SignatureHeader))
	}
	status := StatusCode(err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, publicMessage(status, err)+"\n")
	h.finish(r, e, outcome, status, err, start)
	h.putEvent(e)
}

// Handle processes one delivery whose body the caller already read, for
// frameworks and platforms that own it (a serverless function, say). It
// verifies, decodes, dedups and dispatches exactly as ServeHTTP does, and
// returns the error to answer with [StatusCode]. payload must be the raw
// body.
func (h *Handler) Handle(ctx context.Context, payload []byte, signature string) error {
	start := time.Now()
	if int64(len(payload)) > h.c.maxBody {
		err := &http.MaxBytesError{Limit: h.c.maxBody}
		h.finish(nil, nil, "", StatusCode(err), err, start)
		return err
	}
	e, outcome, err := h.process(ctx, payload, signature)
	h.finish(nil, e, outcome, StatusCode(err), err, start)
	h.putEvent(e)
	return err
}

// Events are pooled: an Event is only valid until its callbacks return
// (its slices alias the request buffer anyway), see [Event].
func (h *Handler) getEvent() *Event {
	if e, ok := h.events.Get().(*Event); ok {
		return e
	}
	return new(Event)
}

func (h *Handler) putEvent(e *Event) {
	if e != nil {
		*e = Event{}
		h.events.Put(e)
	}
}

func (h *Handler) getBuf() *[]byte {
	if bp, ok := h.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 16<<10)
	return &b
}

// readBody reads the whole body into *bp, growing it, up to max bytes.
func readBody(r *http.Request, max int64, bp *[]byte) ([]byte, error) {
	if r.ContentLength > max {
		return nil, &http.MaxBytesError{Limit: max}
	}
	buf := (*bp)[:0]
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength {
		buf = make([]byte, 0, r.ContentLength+512) // room to read EOF without growing
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				break
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			break
		}
		if err == io.EOF {
			*bp = buf
			return buf, nil
		}
		if err != nil {
			*bp = buf
			return nil, fmt.Errorf("%w: reading body: %v", ErrInvalidPayload, err)
		}
	}
	*bp = buf
	return nil, &http.MaxBytesError{Limit: max}
}

// process is the request path after the body is read: verify, decode,
// filter, claim, dispatch, complete or release.
func (h *Handler) process(ctx context.Context, body []byte, header string) (*Event, string, error) {
	ver, err := h.verifier.Verify(body, header)
	if err != nil {
		return nil, "", err
	}
	e := h.getEvent()
	if err := parseEnvelope(body, e); err != nil {
		h.putEvent(e)
		return nil, "", err
	}
	e.Secret = ver.Secret
	if h.c.livemode != nil && e.Livemode != *h.c.livemode {
		return e, "filtered (livemode)", nil
	}
	if h.c.accounts != nil && !h.c.accounts[e.Account] {
		return e, "filtered (account)", nil
	}
	if e.APIVersion != stripe.APIVersion && !sameReleaseTrain(e.APIVersion) {
		if h.c.strictAPIVersion {
			return e, "", fmt.Errorf("%w: event has %q, stripe-go v82 expects %q", ErrAPIVersionMismatch, e.APIVersion, stripe.APIVersion)
		}
		if _, seen := h.warned.LoadOrStore(e.APIVersion, true); !seen {
			h.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: event API version differs from stripe-go's; typed objects may decode wrongly",
				slog.String("event_id", e.ID), slog.String("api_version", e.APIVersion), slog.String("expected", stripe.APIVersion))
		}
	}
	store := h.c.store
	if store == nil {
		handled, err := h.dispatcher.dispatch(ctx, e)
		return e, outcomeOf(handled), err
	}
	key := e.ID
	if h.c.dedupKey != nil {
		if k := h.c.dedupKey(e); k != "" {
			key = k
		}
	}
	claim, err := store.Claim(ctx, key, h.c.lease)
	if err != nil {
		err = &StoreError{Op: "claim", Err: err}
		if !h.c.failOpen {
			return e, "", err
		}
		h.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: dedup store unavailable; processing without dedup (fail open)",
			slog.String("event_id", e.ID), slog.Any("error", err))
		handled, err := h.dispatcher.dispatch(ctx, e)
		return e, outcomeOf(handled), err
	}
	switch claim.Status {
	case Done:
		return e, "duplicate", nil
	case InProgress:
		return e, "", ErrInProgress
	}
	handled, derr := h.dispatcher.dispatch(ctx, e)
	// The claim must be settled even if the client has gone away meanwhile
	// (Stripe gave up waiting): without the request's cancellation, within
	// the store client's own timeouts.
	sctx := context.WithoutCancel(ctx)
	if derr != nil {
		if err := store.Release(sctx, key, claim.Token); err != nil {
			h.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: releasing the claim failed; the retry runs once the lease expires",
				slog.String("event_id", e.ID), slog.Any("error", &StoreError{Op: "release", Err: err}))
		}
		return e, "", derr
	}
	if err := store.Complete(sctx, key, claim.Token, h.c.retention); err != nil {
		// The callbacks succeeded: acknowledge, so Stripe does not run the
		// event again, and say that a late duplicate may still get through.
		h.c.logger.LogAttrs(ctx, slog.LevelError, "stripewebhook: marking the event done failed; a later duplicate may run again",
			slog.String("event_id", e.ID), slog.Any("error", &StoreError{Op: "complete", Err: err}))
	}
	return e, outcomeOf(handled), nil
}

func outcomeOf(handled bool) string {
	if handled {
		return "handled"
	}
	return "unhandled"
}

// sameReleaseTrain reports whether v is on stripe-go's release train
// ("2025-08-27.basil" and "2025-09-30.basil" are).
func sameReleaseTrain(v string) bool {
	_, train, ok := strings.Cut(stripe.APIVersion, ".")
	_, vtrain, vok := strings.Cut(v, ".")
	return ok && vok && train == vtrain && train != "preview"
}

func (h *Handler) finish(r *http.Request, e *Event, outcome string, status int, err error, start time.Time) {
	level := slog.LevelDebug
	switch {
	case status >= 500 || status == http.StatusConflict:
		level = slog.LevelError
		if status == http.StatusConflict {
			level = slog.LevelInfo
		}
	case status >= 400:
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	if h.c.logger.Enabled(ctx, level) {
		attrs := make([]slog.Attr, 0, 7)
		if e != nil {
			attrs = append(attrs, slog.String("event_id", e.ID), slog.String("event_type", string(e.Type)), slog.String("secret", e.Secret))
		}
		attrs = append(attrs, slog.Int("status", status), slog.Duration("duration", time.Since(start)))
		if outcome != "" {
			attrs = append(attrs, slog.String("outcome", outcome))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		h.c.logger.LogAttrs(ctx, level, "stripe webhook", attrs...)
	}
	if err != nil && h.c.onError != nil {
		h.c.onError(r, e, err)
	}
}
