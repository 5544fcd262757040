// Package eventgridwebhook receives Stripe events that an Azure Event Grid
// subscription delivers to a webhook, and runs them through a
// stripewebhook.Handler's pipeline: the same dispatcher, typed callbacks,
// dedup store (an event that also arrives by Stripe's webhook runs once),
// ordering guard, queue and observer.
//
//	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations("ed_…"))
//	eg, err := eventgridwebhook.New(h, os.Getenv("STRIPE_EVENTGRID_SECRET"))
//	http.Handle("/eventgrid", eg)
//
// Event Grid signs nothing: a delivery is trusted because it presents the
// shared secret configured on the subscription's endpoint, as the query
// parameter code (https://host/eventgrid?code=SECRET) or as
// "Authorization: Bearer SECRET" (a delivery attribute); anything else is
// 401 and runs nothing. The events inside must also come from a
// destination the Handler pins (stripewebhook.WithDestinations).
//
// It answers the CloudEvents webhook validation handshake (OPTIONS with
// WebHook-Request-Origin), takes a single CloudEvent
// (application/cloudevents+json) or a batch (application/cloudevents-batch+json,
// a JSON array), and answers with what Event Grid's retry policy expects:
// 200 once every event in it ran (or was a duplicate), the status of a
// failure that a retry can mend (500, 503, 409: Event Grid delivers the
// whole request again, and the dedup store drops what already ran), and
// otherwise 400, 403 or 413, which Event Grid does not retry (it
// dead-letters the events, if the subscription has a dead-letter
// destination).
//
// No third-party dependency: this package is in the core module.
package eventgridwebhook

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/stripewebhook/stripewebhook"
)

// DefaultMaxBodyBytes bounds a delivery's body: Event Grid's batches are
// at most 1 MB.
const DefaultMaxBodyBytes = 1 << 20

// Handler is an http.Handler for Event Grid's webhook deliveries. It is
// safe for concurrent use.
type Handler struct {
	h       *stripewebhook.Handler
	secret  []byte
	maxBody int64
}

// Option configures a Handler.
type Option func(*Handler)

// WithMaxBodyBytes replaces DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option { return func(e *Handler) { e.maxBody = n } }

// New returns a Handler that authenticates deliveries with secret and
// runs their events through h. It fails, saying what is wrong, if h pins
// no destination (Handler.TrustsBus), the secret is shorter than 16 bytes,
// or an option is out of range. The error never holds the secret.
func New(h *stripewebhook.Handler, secret string, opts ...Option) (*Handler, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: eventgridwebhook.New: nil Handler", stripewebhook.ErrInvalidOption)
	}
	if err := h.TrustsBus(); err != nil {
		return nil, fmt.Errorf("eventgridwebhook: %w", err)
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("%w: eventgridwebhook.New: the shared secret has %d bytes; use at least 16 random ones (STRIPE_EVENTGRID_SECRET)", stripewebhook.ErrInvalidOption, len(secret))
	}
	e := &Handler{h: h, secret: []byte(secret), maxBody: DefaultMaxBodyBytes}
	for _, o := range opts {
		o(e)
	}
	if e.maxBody <= 0 {
		return nil, fmt.Errorf("%w: eventgridwebhook.WithMaxBodyBytes(%d): must be positive", stripewebhook.ErrInvalidOption, e.maxBody)
	}
	return e, nil
}

// ErrUnauthorized is a delivery that did not present the shared secret.
var ErrUnauthorized = errors.New("eventgridwebhook: delivery without the shared secret")

// ServeHTTP answers the validation handshake and takes deliveries.
func (e *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		// The handshake runs nothing and says nothing: answered whether
		// or not it presents the secret (Event Grid sends the
		// subscription's query string, not always its headers).
		origin := r.Header.Get("WebHook-Request-Origin")
		if origin == "" {
			http.Error(w, "not a CloudEvents webhook validation", http.StatusBadRequest)
			return
		}
		w.Header().Set("WebHook-Allowed-Origin", origin)
		w.Header().Set("WebHook-Allowed-Rate", "*")
		w.Header().Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !e.authorized(r) {
		w.Header().Set("Connection", "close")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	status := e.deliver(r.Context(), body)
	w.WriteHeader(status)
	fmt.Fprintln(w, http.StatusText(status))
}

// authorized reports whether r presents the secret, in constant time.
func (e *Handler) authorized(r *http.Request) bool {
	ok := false
	if code := r.URL.Query().Get("code"); code != "" {
		ok = subtle.ConstantTimeCompare([]byte(code), e.secret) == 1
	}
	if token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		ok = ok || subtle.ConstantTimeCompare([]byte(token), e.secret) == 1
	}
	return ok
}

// deliver runs each event of body and returns the status to answer.
func (e *Handler) deliver(ctx context.Context, body []byte) int {
	events, err := split(body)
	if err != nil {
		return http.StatusBadRequest
	}
	final := 0 // the status of a failure no retry mends, if any
	for _, raw := range events {
		ev, err := stripewebhook.ParseEventGrid(raw)
		if err == nil {
			err = e.h.Deliver(ctx, ev)
		}
		if err == nil {
			continue
		}
		switch status := stripewebhook.StatusCode(err); status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			if final == 0 {
				final = status
			}
		default:
			// A retry can mend it: the whole request comes back, and what
			// ran is a duplicate then. The rest can wait for it.
			return status
		}
	}
	if final != 0 {
		return final
	}
	return http.StatusOK
}

// split returns the CloudEvents of a delivery: one object, or an array.
func split(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			return nil, errors.New("an empty batch")
		}
		return batch, nil
	}
	return []json.RawMessage{body}, nil
}
