package eventgridwebhook_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/eventgridwebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const secret = "eventgrid-test-shared-secret-0123"

type app struct {
	mu   sync.Mutex
	runs map[string]int
	fail map[string]bool
}

func (a *app) ran(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

func newServer(t *testing.T) (*app, *httptest.Server) {
	a := &app{runs: map[string]int{}, fail: map[string]bool{}}
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.fail[e.ID] {
			return errors.New("database down")
		}
		a.runs[e.ID]++
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	eg, err := eventgridwebhook.New(h, secret, eventgridwebhook.WithMaxBodyBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(eg)
	t.Cleanup(srv.Close)
	return a, srv
}

func cloudEvent(t *testing.T, id string) []byte {
	return webhooktest.EventGrid(t, webhooktest.Fixture(t, "invoice.paid", fixture.ID(id)))
}

func batch(events ...[]byte) []byte {
	return append(append([]byte("["), bytes.Join(events, []byte(","))...), ']')
}

func post(t *testing.T, url string, body []byte, auth string) int {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestValidationHandshake(t *testing.T) {
	_, srv := newServer(t)
	req, _ := http.NewRequest(http.MethodOptions, srv.URL, nil)
	req.Header.Set("WebHook-Request-Origin", "eventgrid.azure.net")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("WebHook-Allowed-Origin") != "eventgrid.azure.net" {
		t.Fatalf("handshake: %d, allowed origin %q", res.StatusCode, res.Header.Get("WebHook-Allowed-Origin"))
	}
}

func TestAuthentication(t *testing.T) {
	a, srv := newServer(t)
	ev := cloudEvent(t, "evt_eg_auth")
	for name, c := range map[string]struct{ url, auth string }{
		"none":          {srv.URL, ""},
		"wrong code":    {srv.URL + "?code=" + strings.Repeat("x", len(secret)), ""},
		"wrong bearer":  {srv.URL, "Bearer nope"},
		"basic":         {srv.URL, "Basic " + secret},
		"prefix of it":  {srv.URL + "?code=" + secret[:20], ""},
		"secret+suffix": {srv.URL + "?code=" + secret + "x", ""},
	} {
		if code := post(t, c.url, ev, c.auth); code != 401 {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	if a.ran("evt_eg_auth") != 0 {
		t.Fatal("an unauthenticated delivery ran")
	}
	if code := post(t, srv.URL, ev, "Bearer "+secret); code != 200 {
		t.Fatalf("bearer: %d", code)
	}
	if code := post(t, srv.URL+"?code="+secret, ev, ""); code != 200 {
		t.Fatalf("code: %d", code)
	}
	if a.ran("evt_eg_auth") != 1 {
		t.Fatalf("ran %d times, want once", a.ran("evt_eg_auth"))
	}
}

func TestBatchesAndRetries(t *testing.T) {
	a, srv := newServer(t)
	url := srv.URL + "?code=" + secret
	// One event alone, not in an array.
	if code := post(t, url, cloudEvent(t, "evt_eg_single"), ""); code != 200 || a.ran("evt_eg_single") != 1 {
		t.Fatalf("single: %d, ran %d", code, a.ran("evt_eg_single"))
	}
	// A batch with a failing callback is retried whole: 500, then 200
	// once it passes; what had run does not run again.
	a.fail["evt_eg_b2"] = true
	b := batch(cloudEvent(t, "evt_eg_b1"), cloudEvent(t, "evt_eg_b2"), cloudEvent(t, "evt_eg_b3"))
	if code := post(t, url, b, ""); code != 500 {
		t.Fatalf("batch with a failure: %d, want 500 (retried)", code)
	}
	if a.ran("evt_eg_b1") != 1 || a.ran("evt_eg_b2") != 0 {
		t.Fatalf("after the failure: b1 %d, b2 %d", a.ran("evt_eg_b1"), a.ran("evt_eg_b2"))
	}
	a.mu.Lock()
	delete(a.fail, "evt_eg_b2")
	a.mu.Unlock()
	if code := post(t, url, b, ""); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	for _, id := range []string{"evt_eg_b1", "evt_eg_b2", "evt_eg_b3"} {
		if a.ran(id) != 1 {
			t.Fatalf("%s ran %d times, want once", id, a.ran(id))
		}
	}
	// Not retried by Event Grid: an untrusted destination (403), what is
	// not a CloudEvent (400), a body over the cap (413). Nothing ran.
	other, _ := fixture.EventGrid(webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_eg_other")), "ed_test_someoneelse", time.Now())
	for name, c := range map[string]struct {
		body []byte
		want int
	}{
		"untrusted":    {other, 403},
		"not JSON":     {[]byte(`{"specversion":`), 400},
		"empty batch":  {[]byte(`[]`), 400},
		"not an event": {batch([]byte(`{"specversion":"1.0","id":"1","source":"/providers/stripe/` + fixture.Destination + `","type":"x","data":{}}`)), 400},
		"too large":    {bytes.Repeat([]byte(" "), 65<<10), 413},
	} {
		if code := post(t, url, c.body, ""); code != c.want {
			t.Errorf("%s: %d, want %d", name, code, c.want)
		}
	}
	if a.ran("evt_eg_other") != 0 {
		t.Fatal("an untrusted event ran")
	}
}

func TestNewChecks(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	unpinned, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventgridwebhook.New(unpinned, secret); !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), "WithDestinations") {
		t.Fatalf("no destination pinned: %v", err)
	}
	d2 := stripewebhook.NewDispatcher()
	d2.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	pinned, err := stripewebhook.NewHandler(d2, nil, stripewebhook.WithDestinations(fixture.Destination))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eventgridwebhook.New(pinned, "short-one"); !errors.Is(err, stripewebhook.ErrInvalidOption) || strings.Contains(err.Error(), "short-one") {
		t.Fatalf("short secret: %v", err)
	}
}
