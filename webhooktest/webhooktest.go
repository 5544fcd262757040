// Package webhooktest signs payloads as Stripe does and loads realistic
// fixture events (package fixture), so that an application can unit-test
// its webhook callbacks through the real handler:
//
//	req := webhooktest.NewRequest(t, "/webhook", webhooktest.Fixture(t, "invoice.paid"), secret)
//	rec := httptest.NewRecorder()
//	handler.ServeHTTP(rec, req)
//
// Like net/http/httptest, its helpers are for tests: they report problems
// through testing.TB and stop the test.
package webhooktest

import (
	"bytes"
	"embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// NewRequest returns a POST request for target (a path such as
// "/webhook", or an absolute URL, as for [httptest.NewRequest]) carrying
// payload, signed now with each secret (one v1 per secret, as while a secret
// is rolled). It is a server request, for handler.ServeHTTP.
func NewRequest(tb testing.TB, target string, payload []byte, secrets ...string) *http.Request {
	tb.Helper()
	return NewRequestAt(tb, target, payload, time.Now(), secrets...)
}

// NewRequestAt is [NewRequest] signed at t (a stale or future timestamp).
func NewRequestAt(tb testing.TB, target string, payload []byte, t time.Time, secrets ...string) *http.Request {
	tb.Helper()
	if len(secrets) == 0 {
		tb.Fatalf("webhooktest: no secret to sign with")
	}
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", fixture.Header(payload, t, secrets...))
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	return req
}

//go:embed testdata/api/*.json
var apiObjects embed.FS

// Fixture returns a copy of the fixture event of that name, pretty-printed
// as Stripe sends it, changed by edits: see [fixture.Load] for the names
// and [fixture.Edit] for the edits. The thin event types
// (v1.billing.meter.*, v2.core.event_destination.ping) are thin events,
// whose full events and related objects [NewStripeAPI] serves.
func Fixture(tb testing.TB, name string, edits ...fixture.Edit) []byte {
	tb.Helper()
	b, err := fixture.Load(name, edits...)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return b
}

// Vary returns a copy of the event payload with the edits applied, for a
// test that needs the fixture with another account, status or type:
//
//	payload := webhooktest.Vary(t, webhooktest.Fixture(t, "invoice.paid"),
//		fixture.Account("acct_123"),
//		fixture.ObjectField("status", "open"),
//		fixture.PreviousAttributes(map[string]any{"status": "draft"}))
func Vary(tb testing.TB, payload []byte, edits ...fixture.Edit) []byte {
	tb.Helper()
	out, err := fixture.Apply(payload, edits...)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return out
}

// WithID returns a copy of the event payload with its id replaced, for
// tests that need distinct events of one type. The rest of the payload is
// kept byte for byte.
func WithID(tb testing.TB, payload []byte, id string) []byte {
	tb.Helper()
	var env struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(payload, &env); err != nil || env.ID == "" {
		tb.Fatalf("webhooktest: payload is not an event with an id: %v", err)
	}
	old, _ := json.Marshal(env.ID)
	newID, _ := json.Marshal(id)
	key := []byte(`"id": `)
	i := bytes.Index(payload, append(key, old...))
	if i < 0 {
		key = []byte(`"id":`)
		i = bytes.Index(payload, append(key, old...))
	}
	if i < 0 {
		tb.Fatalf("webhooktest: cannot find the event id in the payload")
	}
	out := make([]byte, 0, len(payload)+len(newID))
	out = append(out, payload[:i+len(key)]...)
	out = append(out, newID...)
	out = append(out, payload[i+len(key)+len(old):]...)
	return out
}
