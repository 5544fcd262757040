package load

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/webhooktest"
)

func TestFireRaw(t *testing.T) {
	var got atomic.Int64
	var bad atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/webhook" || r.Header.Get("Stripe-Signature") == "" || !strings.Contains(string(body), `"id": "evt_raw_`) {
			bad.Store(true)
		}
		got.Add(1)
		w.Write([]byte("ok, with a body to skip"))
	}))
	defer srv.Close()
	events := Sign(webhooktest.Fixture(t, "payment_intent.succeeded"), "evt_raw_", 200, time.Now(), "whsec_load")
	lat, wall, err := FireRaw(strings.TrimPrefix(srv.URL, "http://"), events, 8)
	if err != nil || got.Load() != 200 || bad.Load() || wall <= 0 {
		t.Fatalf("err %v, %d requests, malformed %v", err, got.Load(), bad.Load())
	}
	for i, l := range lat {
		if l <= 0 {
			t.Fatalf("request %d has no latency", i)
		}
	}
}

func TestFireRawFailsOnAnythingButA200(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"400 Bad Request": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) },
		"chunked":         func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 8<<10)); w.(http.Flusher).Flush() },
	} {
		srv := httptest.NewServer(h)
		events := Sign(webhooktest.Fixture(t, "payment_intent.succeeded"), "evt_raw_", 4, time.Now(), "whsec_load")
		if _, _, err := FireRaw(strings.TrimPrefix(srv.URL, "http://"), events, 2); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
		srv.Close()
	}
}
