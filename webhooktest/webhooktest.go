// Package webhooktest signs payloads as Stripe does and loads realistic
// fixture events, so that an application can unit-test its webhook
// callbacks through the real handler:
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
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Signature returns the hex v1 signature of payload signed at t with
// secret: HMAC-SHA256 of "<unix t>.<payload>", keyed by the whole secret
// string (whsec_ prefix included).
func Signature(payload []byte, t time.Time, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return hex.EncodeToString(mac.Sum(nil))
}

// Header returns a Stripe-Signature header for payload signed at t with
// each secret, one v1 per secret, as Stripe sends while a secret is rolled:
// "t=1764000000,v1=…,v1=…".
func Header(payload []byte, t time.Time, secrets ...string) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(Signature(payload, t, s))
	}
	return b.String()
}

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
	req.Header.Set("Stripe-Signature", Header(payload, t, secrets...))
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	return req
}

//go:embed testdata/*.json testdata/api/*.json
var fixtures embed.FS

// Fixture returns a copy of the fixture event of that type, pretty-printed
// as Stripe sends it, with an object from stripe-mock, changed by edits (see
// [Edit]). Connect events (account.*, payout.failed, person.updated) carry
// an account. The thin event types (v1.billing.meter.*,
// v2.core.event_destination.ping) are thin events, whose full events and
// related objects [NewStripeAPI] serves. A second fixture of one type is named "<type>+<variant>":
// "checkout.session.completed+subscription" is a subscription-mode session
// with a customer. See [FixtureTypes] for the list.
func Fixture(tb testing.TB, name string, edits ...Edit) []byte {
	tb.Helper()
	b, err := LoadFixture(name, edits...)
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return b
}

// LoadFixture is [Fixture] for programs (the stripewebhook command): it
// returns an error instead of stopping a test.
func LoadFixture(name string, edits ...Edit) ([]byte, error) {
	b, err := fixtures.ReadFile("testdata/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no fixture %q (have %s)", name, strings.Join(FixtureTypes(), ", "))
	}
	if len(edits) > 0 {
		return Apply(b, edits...)
	}
	return b, nil
}

// FixtureTypes lists the fixtures' names (event types, and "<type>+<variant>"
// for a second fixture of a type), sorted.
func FixtureTypes() []string {
	entries, _ := fs.ReadDir(fixtures, "testdata")
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	sort.Strings(out)
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
