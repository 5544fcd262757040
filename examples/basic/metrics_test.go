package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// startWithMetrics runs the example with -metrics and returns the webhook
// URL and the metrics URL.
func startWithMetrics(t *testing.T) (string, string) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-metrics", "127.0.0.1:0"}, secretEnv, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var webhookURL, metricsURL string
	sc := bufio.NewScanner(pr)
	deadline := time.After(10 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for webhookURL == "" || metricsURL == "" {
		select {
		case l := <-lines:
			if a, ok := strings.CutPrefix(l, "metrics on "); ok {
				metricsURL = a
			}
			if a, ok := strings.CutPrefix(l, "listening on "); ok {
				a, _, _ = strings.Cut(a, ": POST")
				webhookURL = "http://" + a + "/webhook"
			}
		case <-deadline:
			t.Fatal("the example did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return webhookURL, metricsURL
}

func post(t *testing.T, url string, payload []byte, sig string) int {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(payload))
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func scrape(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sample finds the value of the series of name whose labels include all of
// want, in a Prometheus text exposition.
func sample(exposition, name string, want map[string]string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for k, v := range want {
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
			}
		}
		if ok {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

// The example's /metrics counts real deliveries by status and event type.
func TestMetricsCountDeliveries(t *testing.T) {
	webhookURL, metricsURL := startWithMetrics(t)
	pi := webhooktest.Fixture(t, "payment_intent.succeeded")
	for _, tt := range []struct {
		payload []byte
		secret  string
		status  int
	}{
		{pi, secret, 200},
		{pi, secret, 200}, // a duplicate
		{webhooktest.Fixture(t, "charge.succeeded"), secret, 200},
		{pi, "whsec_forged", 400},
	} {
		if got := post(t, webhookURL, tt.payload, fixture.Header(tt.payload, time.Now(), tt.secret)); got != tt.status {
			t.Fatalf("status %d, want %d", got, tt.status)
		}
	}
	m := scrape(t, metricsURL)
	for _, c := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"http_response_status_code": "200", "stripe_event_type": "payment_intent.succeeded", "stripewebhook_outcome": "handled"}, "1"},
		{map[string]string{"http_response_status_code": "200", "stripe_event_type": "payment_intent.succeeded", "stripewebhook_outcome": "duplicate"}, "1"},
		{map[string]string{"http_response_status_code": "200", "stripe_event_type": "charge.succeeded", "stripewebhook_outcome": "handled_catch_all"}, "1"},
		{map[string]string{"http_response_status_code": "400", "stripewebhook_reason": "bad_signature", "stripe_event_type": "none"}, "1"},
	} {
		if got := sample(m, "stripewebhook_deliveries_total", c.labels); got != c.want {
			t.Errorf("stripewebhook_deliveries_total%v = %q, want %s\n%s", c.labels, got, c.want, m)
		}
	}
	for _, name := range []string{"stripewebhook_delivery_duration_seconds_bucket", "stripewebhook_event_age_seconds_count", "stripewebhook_store_duration_seconds_sum"} {
		if !strings.Contains(m, name+"{") {
			t.Errorf("no %s in the exposition", name)
		}
	}
	if strings.Contains(m, secret) || strings.Contains(m, "evt_") {
		t.Error("the exposition holds a secret or an event id")
	}

	// Every metric the Grafana dashboard queries is one the example exports.
	b, err := os.ReadFile("../grafana/stripewebhook.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`stripewebhook_[a-z_]+_(total|bucket|count|sum)\b`)
	exported := map[string]bool{}
	for _, line := range strings.Split(m, "\n") {
		if n := name.FindString(line); n != "" && strings.HasPrefix(line, n) {
			exported[n] = true
		}
	}
	var queried []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				queried = append(queried, n)
				if !exported[n] {
					t.Errorf("panel %q queries %s, which the example does not export", p.Title, n)
				}
			}
			for _, label := range []string{"event_id", "stripe_event_id"} {
				if strings.Contains(tg.Expr, label) {
					t.Errorf("panel %q groups by %s", p.Title, label)
				}
			}
		}
	}
	sort.Strings(queried)
	if len(queried) < 5 {
		t.Fatalf("the dashboard queries only %v", queried)
	}
}
