package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// failingFirst answers 500 to its first n deliveries, then hands them to
// the SDK-verified endpoint.
type failingFirst struct {
	n  atomic.Int32
	ep *sdkEndpoint
}

func (f *failingFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.n.Add(-1) >= 0 {
		http.Error(w, "database down", http.StatusInternalServerError)
		return
	}
	f.ep.ServeHTTP(w, r)
}

// send is `stripe trigger` offline: a new event created now, fields set
// with -set, and a non-2xx retried as Stripe retries.
func TestSendAsStripeTrigger(t *testing.T) {
	ep := &failingFirst{ep: &sdkEndpoint{}}
	ep.n.Store(2)
	srv := httptest.NewServer(ep)
	defer srv.Close()
	start := time.Now()
	code, out, errOut := runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret,
		"-set", "data.object.status=past_due", "-set", `data.object.metadata={"plan":"pro"}`, "-set", "data.object.quantity=3",
		"customer.subscription.updated")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if strings.Count(out, "500 database down (retry in") != 2 || !strings.Contains(out, "(retry in 1s)") || !strings.Contains(out, "(retry in 2s)") ||
		!strings.HasSuffix(out, "customer.subscription.updated 200 \n") {
		t.Fatalf("retries:\n%s", out)
	}
	if waited := time.Since(start); waited < 3*time.Second {
		t.Fatalf("retried after %v, want 1 s then 2 s", waited)
	}
	events, _ := ep.ep.got()
	if len(events) != 1 {
		t.Fatalf("%d events verified", len(events))
	}
	e := events[0]
	if age := time.Since(time.Unix(e.Created, 0)); age < 0 || age > time.Minute {
		t.Fatalf("created %v ago, want now", age)
	}
	obj := e.Data.Object
	if obj["status"] != "past_due" || obj["quantity"] != float64(3) || obj["metadata"].(map[string]any)["plan"] != "pro" {
		t.Fatalf("data.object: status %v quantity %v metadata %v", obj["status"], obj["quantity"], obj["metadata"])
	}

	// -retries 0: one attempt.
	ep.n.Store(1)
	code, out, _ = runBinary(t, nil, "send", "-url", srv.URL, "-secret", secret, "-retries", "0", "invoice.paid")
	if code != 1 || strings.Contains(out, "retry") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// send -flow subscription sends the lifecycle, each event verified by
// Stripe's SDK, in the order asked, with created times that increase in
// the lifecycle's order and end now.
func TestSendFlow(t *testing.T) {
	lifecycle, err := fixture.SubscriptionFlow(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	types := make([][]byte, len(lifecycle)) // the types, as payloads for fixture's orders
	for i, p := range lifecycle {
		var e struct{ Type string }
		if err := json.Unmarshal(p, &e); err != nil {
			t.Fatal(err)
		}
		types[i] = []byte(e.Type)
	}
	for _, tt := range []struct {
		args  []string
		order fixture.Order
	}{
		{nil, fixture.InOrder},
		{[]string{"-order", "reversed"}, fixture.Reversed},
		{[]string{"-order", "shuffled", "-seed", "3"}, fixture.Shuffled(3)},
	} {
		ep := &sdkEndpoint{}
		srv := httptest.NewServer(ep)
		args := append([]string{"send", "-url", srv.URL, "-secret", secret, "-flow", "subscription"}, tt.args...)
		code, out, errOut := runBinary(t, nil, args...)
		srv.Close()
		if code != 0 {
			t.Fatalf("%v: exit %d: %s%s", tt.args, code, out, errOut)
		}
		events, _ := ep.got()
		if len(events) != len(lifecycle) {
			t.Fatalf("%v: %d events of %d", tt.args, len(events), len(lifecycle))
		}
		var want, got []string
		for _, ty := range tt.order(types) {
			want = append(want, string(ty))
		}
		created := make([]int64, len(lifecycle)) // by the event's place in the lifecycle, from its id evt_flow_<n>_…
		for _, e := range events {
			got = append(got, string(e.Type))
			var n int
			if _, err := fmt.Sscanf(e.ID, "evt_flow_%d_", &n); err != nil || n >= len(created) || created[n] != 0 {
				t.Fatalf("event id %s", e.ID)
			}
			created[n] = e.Created
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%v: delivered\n%v\nwant\n%v", tt.args, got, want)
		}
		for n := 1; n < len(created); n++ {
			if created[n] <= created[n-1] {
				t.Fatalf("created %v does not increase in the lifecycle's order", created)
			}
		}
		if d := time.Since(time.Unix(created[len(created)-1], 0)); d < 0 || d > time.Minute {
			t.Fatalf("the last event was created %v ago, want now", d)
		}
		if len(tt.args) == 4 && !strings.Contains(out, "-order shuffled -seed 3") {
			t.Fatalf("the seed is not printed: %s", out)
		}
	}
}

// The endpoint secret comes from STRIPE_WEBHOOK_SECRET or -secret-file,
// out of the process's arguments; -secret still works, with a warning.
// The secret never shows in the output.
func TestSecretsOutOfArguments(t *testing.T) {
	ep := &sdkEndpoint{}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	for name, c := range map[string]struct {
		env  []string
		args []string
		warn bool
	}{
		"environment": {[]string{"STRIPE_WEBHOOK_SECRET=" + secret}, nil, false},
		"file":        {[]string{"STRIPE_WEBHOOK_SECRET="}, []string{"-secret-file", file}, false},
		"flag":        {[]string{"STRIPE_WEBHOOK_SECRET="}, []string{"-secret", secret}, true},
	} {
		args := append(append([]string{"send", "-url", srv.URL}, c.args...), "customer.created")
		code, out, errOut := runBinary(t, c.env, args...)
		if code != 0 || !strings.Contains(out, "customer.created 200") {
			t.Fatalf("%s: exit %d: %s%s", name, code, out, errOut)
		}
		if strings.Contains(errOut, "warning: -secret is visible") != c.warn {
			t.Fatalf("%s: warning %q", name, errOut)
		}
		if strings.Contains(out+strings.ReplaceAll(errOut, "whsec_…", ""), secret) {
			t.Fatalf("%s: the secret in the output", name)
		}
	}
}
