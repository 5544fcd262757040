package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// binary is the command, built once for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stripewebhook-cmd")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "stripewebhook")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the command: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the built command and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

const secret = "whsec_cmd_test"

// sdkEndpoint verifies deliveries with Stripe's own SDK (ConstructEvent for
// snapshots, ParseThinEvent for thin events) and records them.
type sdkEndpoint struct {
	mu     sync.Mutex
	events []stripe.Event
	thin   []*stripe.ThinEvent
}

func (s *sdkEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	header := r.Header.Get("Stripe-Signature")
	var probe struct{ Object string }
	json.Unmarshal(body, &probe)
	s.mu.Lock()
	defer s.mu.Unlock()
	if probe.Object == "v2.core.event" {
		te, err := stripe.NewClient("sk_test_x").ParseThinEvent(body, header, secret)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.thin = append(s.thin, te)
		return
	}
	ev, err := webhook.ConstructEvent(body, header, secret)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.events = append(s.events, ev)
}

// got returns copies of what the endpoint verified so far.
func (s *sdkEndpoint) got() ([]stripe.Event, []*stripe.ThinEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stripe.Event(nil), s.events...), append([]*stripe.ThinEvent(nil), s.thin...)
}

func TestSendIsVerifiedByStripeSDK(t *testing.T) {
	ep := &sdkEndpoint{}
	srv := httptest.NewServer(ep)
	defer srv.Close()

	code, out, errOut := runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "-times", "3", "-account", "acct_1Cli", "-livemode", "invoice.paid")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	events, _ := ep.got()
	if len(events) != 3 || strings.Count(out, "invoice.paid 200") != 3 {
		t.Fatalf("%d deliveries verified; output:\n%s", len(events), out)
	}
	e := events[0]
	if e.ID != events[2].ID || !strings.HasPrefix(e.ID, "evt_") || e.Account != "acct_1Cli" || !e.Livemode || e.Type != "invoice.paid" {
		t.Fatalf("event %s account %q livemode %v", e.ID, e.Account, e.Livemode)
	}

	// A second send is a new event; a thin type sends a thin event.
	runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "invoice.paid")
	if events, _ = ep.got(); events[3].ID == e.ID {
		t.Fatal("a second send reused the event id")
	}
	code, out, errOut = runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "v1.billing.meter.error_report_triggered")
	if _, thin := ep.got(); code != 0 || len(thin) != 1 {
		t.Fatalf("thin: exit %d, %d thin events: %s%s", code, len(thin), out, errOut)
	}

	// A file of one's own.
	file := filepath.Join(t.TempDir(), "mine.json")
	os.WriteFile(file, []byte(`{"id":"evt_mine","object":"event","type":"customer.created","api_version":"`+stripe.APIVersion+`","created":1764000000,"data":{"object":{"id":"cus_1","object":"customer"}}}`), 0o644)
	code, out, _ = runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "-id", "evt_mine", file)
	if events, _ = ep.got(); code != 0 || events[len(events)-1].ID != "evt_mine" {
		t.Fatalf("file: exit %d: %s", code, out)
	}

	// Signed 10 minutes ago: Stripe's SDK refuses it, and so the command fails.
	code, out, errOut = runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "-at", "-10m", "-retries", "0", "invoice.paid")
	if code != 1 || !strings.Contains(out, "400") || !strings.Contains(errOut, "did not get a 2xx") {
		t.Fatalf("stale: exit %d: %s%s", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "Commands:"},
		{"unknown command", nil, []string{"trigger"}, 2, `unknown command "trigger"`},
		{"help", nil, []string{"-h"}, 0, "Commands:"},
		{"send -h", nil, []string{"send", "-h"}, 0, "TYPE is a fixture"},
		{"replay -h", nil, []string{"replay", "-h"}, 0, "STRIPE_API_KEY"},
		{"send without secret", []string{"STRIPE_WEBHOOK_SECRET="}, []string{"send", "-url", "http://127.0.0.1:1/webhook", "invoice.paid"}, 2, "STRIPE_WEBHOOK_SECRET=whsec_… in the environment"},
		{"send with an API key in the environment", []string{"STRIPE_WEBHOOK_SECRET=sk_test_123"}, []string{"send", "-url", "http://127.0.0.1:1/webhook", "invoice.paid"}, 2, "secret API key"},
		{"send with an API key", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", "sk_test_123", "invoice.paid"}, 2, "secret API key"},
		{"send without url", nil, []string{"send", "-secret", secret, "invoice.paid"}, 2, "-url must be"},
		{"send unknown fixture", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "invoice.payed"}, 1, `no fixture "invoice.payed"`},
		{"send unreachable", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "-retries", "0", "invoice.paid"}, 1, "connection refused"},
		{"send an unknown flow", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "-flow", "refund"}, 2, `unknown flow "refund"`},
		{"send a flow and a type", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "-flow", "subscription", "invoice.paid"}, 2, "no TYPE or FILE"},
		{"send a flow in no order", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "-flow", "subscription", "-order", "sorted"}, 2, "not in, shuffled or reversed"},
		{"send -set outside data.object", nil, []string{"send", "-url", "http://127.0.0.1:1/webhook", "-secret", secret, "-set", "livemode=true", "invoice.paid"}, 2, "not data.object.PATH=VALUE"},
		{"replay without key", []string{"STRIPE_API_KEY="}, []string{"replay", "-url", "http://127.0.0.1:1/webhook", "-secret", secret}, 2, "STRIPE_API_KEY must hold"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runBinary(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.code, tt.want, out, errOut)
			}
			if strings.Contains(errOut, "whsec_cmd_test") || strings.Contains(errOut, "sk_test_123") {
				t.Fatal("a secret in the output")
			}
		})
	}
}

// replay against a fake list API holding events delivered and not, inside
// and outside the window, some already processed by the endpoint: the
// endpoint runs each missed event once and nothing else.
func TestReplay(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	now := time.Now()
	add := func(id string, created time.Time, delivered bool, edits ...fixture.Edit) []byte {
		p := webhooktest.Fixture(t, "invoice.paid", append([]fixture.Edit{fixture.ID(id), fixture.Created(created.Unix())}, edits...)...)
		api.AddListedEvent(t, p, delivered)
		return p
	}
	add("evt_missed_1", now.Add(-3*time.Hour), false)
	add("evt_missed_2", now.Add(-2*time.Hour), false)
	add("evt_delivered", now.Add(-time.Hour), true)
	add("evt_too_old", now.Add(-100*time.Hour), false)
	done := add("evt_done", now.Add(-30*time.Minute), false)
	add("evt_connected", now.Add(-20*time.Minute), false, fixture.Account("acct_1"))

	var mu sync.Mutex
	var ran []string
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		mu.Lock()
		ran = append(ran, e.ID)
		mu.Unlock()
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(context.Background(), done, fixture.Header(done, now, secret)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ran = nil
	mu.Unlock()
	srv := httptest.NewServer(h)
	defer srv.Close()

	code, out, errOut := runBinary(t, []string{"STRIPE_API_KEY=sk_test_replay"}, "replay", "-url", srv.URL, "-secret", secret,
		"-since", "72h", "-accounts", "acct_1", "-api-base", api.URL())
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	want := []string{"evt_missed_1", "evt_missed_2", "evt_connected"}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(ran) != fmt.Sprint(want) {
		t.Fatalf("ran %v, want %v (oldest first, once each)\n%s", ran, want, out)
	}
	if !strings.Contains(out, "4 undelivered events replayed, 0 failed") {
		t.Fatalf("output:\n%s", out)
	}

	// The API refuses the key: a clear error, exit 1.
	code, _, errOut = runBinary(t, []string{"STRIPE_API_KEY=rk_test_refused"}, "replay", "-url", srv.URL, "-secret", secret, "-api-base", api.URL())
	if code != 1 || !strings.Contains(errOut, "listing undelivered events") || !strings.Contains(errOut, "Invalid API Key") {
		t.Fatalf("refused key: exit %d: %s", code, errOut)
	}
}

func TestEndpointsCheck(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	api.AddEndpoint(t, []byte(`{"id":"we_1","object":"webhook_endpoint","url":"https://example.com/webhook","status":"enabled","enabled_events":["charge.succeeded","invoice.paid"],"api_version":"2024-06-20","secret":"whsec_never_shown"}`))
	env := []string{"STRIPE_API_KEY=sk_test_endpoints"}
	args := []string{"endpoints", "check", "-url", "https://example.com/webhook", "-types", "invoice.*,customer.subscription.updated", "-api-base", api.URL()}
	code, out, errOut := runBinary(t, env, args...)
	if code != 1 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"sent but not handled (acknowledged and dropped): charge.succeeded", "handled but never sent", "customer.subscription.updated", "2024-06-20 is not on stripe-go v82's release train"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "whsec_") {
		t.Fatal("the report shows the endpoint's secret")
	}
	code, out, errOut = runBinary(t, env, append(args, "-fix")...)
	if code != 1 || !strings.Contains(out, "enabled_events updated") || strings.Contains(out, "sent but not handled") || strings.Contains(out, "never sent") {
		t.Fatalf("after -fix (the API version still drifts): exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runBinary(t, env, "endpoints", "check", "-id", "we_missing", "-types", "invoice.paid", "-api-base", api.URL()); code != 1 || !strings.Contains(errOut, "retrieving endpoint we_missing") || !strings.Contains(errOut, "No such resource") {
		t.Fatalf("missing endpoint: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runBinary(t, env, "endpoints", "check", "-url", "https://example.com/other", "-types", "invoice.paid", "-api-base", api.URL()); code != 1 ||
		!strings.HasPrefix(errOut, "stripewebhook: no webhook endpoint has the URL https://example.com/other") {
		t.Fatalf("unknown URL: exit %d: %q", code, errOut)
	}
	if code, _, errOut := runBinary(t, env, "endpoints", "check", "-id", "we_1", "-types", "invoice.payed", "-api-base", api.URL()); code != 2 || !strings.Contains(errOut, "unknown event type") {
		t.Fatalf("typo in -types: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runBinary(t, nil, "endpoints", "check", "-h"); code != 0 || !strings.Contains(errOut, "-fix") {
		t.Fatalf("-h: exit %d: %s", code, errOut)
	}
}
