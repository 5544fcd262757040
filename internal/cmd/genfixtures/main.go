// Command genfixtures writes the fixture events of fixture/events and
// the benchmark payloads of testdata/ from the resources of a local
// stripe-mock (go install github.com/stripe/stripe-mock@latest; stripe-mock
// -http-port 12111), wrapped in event envelopes as Stripe sends them:
// pretty-printed, two-space indent, "id" and "object" first.
//
//	go run ./internal/cmd/genfixtures -mock http://localhost:12111
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook/internal/stripejson"
)

type fixture struct {
	typ     string
	variant string // a second fixture of one type: "<type>+<variant>.json"
	path    string // stripe-mock resource
	account string // Connect events carry the connected account
	edit    func(obj map[string]any)
	prev    map[string]any // data.previous_attributes
	request bool           // caused by an API request (else automatic)
	created int64          // the event's created, for the billing story's (story.go); else by index
}

func main() {
	mock := flag.String("mock", "http://localhost:12111", "stripe-mock base URL")
	out := flag.String("out", ".", "module root")
	flag.Parse()

	const connected = "acct_1SbCdEfGhIjKlMnO"
	fixtures := []fixture{
		{typ: "payment_intent.succeeded", path: "payment_intents/pi_123", request: true, edit: func(o map[string]any) {
			o["status"], o["amount_received"], o["latest_charge"] = "succeeded", o["amount"], "ch_3SbQkR2eZvKYlo2C0a1b2c3d"
		}},
		{typ: "payment_intent.payment_failed", path: "payment_intents/pi_123", request: true, edit: func(o map[string]any) {
			o["status"] = "requires_payment_method"
			o["last_payment_error"] = map[string]any{
				"code": "card_declined", "decline_code": "insufficient_funds", "doc_url": "https://stripe.com/docs/error-codes/card-declined",
				"message": "Your card has insufficient funds.", "type": "card_error", "charge": "ch_3SbQkR2eZvKYlo2C0a1b2c3d",
			}
		}},
		{typ: "payment_method.attached", path: "payment_methods/pm_123", created: tCheckout - 1, edit: func(o map[string]any) {
			o["id"], o["customer"], o["created"] = storyPaymentMethod, storyCustomer, tCheckout-1
		}},
		{typ: "charge.succeeded", path: "charges/ch_123", request: true},
		{typ: "charge.dispute.created", path: "disputes/dp_123"},
		{typ: "balance.available", path: "balance"},
		{typ: "invoice.created", path: "invoices/in_123", created: tInvoiced, edit: invoice(false, "draft", tInvoiced)},
		{typ: "invoice.paid", path: "invoices/in_123", created: tInvoiced + 2, edit: invoice(false, "paid", tInvoiced+2)},
		{typ: "customer.subscription.created", path: "subscriptions/sub_123", created: tSubscribed, edit: subscription("trialing", tSubscribed)},
		{typ: "customer.subscription.updated", path: "subscriptions/sub_123", created: tDefaultPM, request: true,
			prev: map[string]any{"default_payment_method": nil}, edit: subscription("trialing", tDefaultPM)},
		{typ: "customer.subscription.deleted", path: "subscriptions/sub_123", created: tCanceled, edit: subscription("canceled", tCanceled)},
		{typ: "checkout.session.completed", path: "checkout/sessions/cs_123", edit: func(o map[string]any) {
			o["status"], o["payment_status"] = "complete", "paid"
		}},
		{typ: "account.updated", path: "accounts/acct_123", account: connected, prev: map[string]any{"charges_enabled": false}, edit: func(o map[string]any) {
			o["id"], o["charges_enabled"] = connected, true
		}},
		{typ: "account.application.deauthorized", account: connected},
		{typ: "account.external_account.updated", path: "accounts/acct_123/external_accounts/ba_123", account: connected, prev: map[string]any{"default_for_currency": false}, edit: func(o map[string]any) {
			o["account"], o["default_for_currency"] = connected, true
		}},
		{typ: "payout.failed", path: "payouts/po_123", account: connected, edit: func(o map[string]any) {
			o["status"], o["failure_code"], o["failure_message"] = "failed", "account_closed", "The bank account has been closed."
		}},
		{typ: "person.updated", path: "accounts/acct_123/persons/person_123", account: connected, prev: map[string]any{"first_name": "Jenny"}, edit: func(o map[string]any) {
			o["account"] = connected
		}},
		// Billing, checkout and payment flows.
		{typ: "invoice.payment_failed", path: "invoices/in_123", created: tFailed, edit: invoice(true, "open", tFailed)},
		{typ: "invoice.finalized", path: "invoices/in_123", created: tInvoiced + 1, edit: invoice(false, "open", tInvoiced+1)},
		{typ: "invoice.upcoming", path: "invoices/in_123", created: tUpcoming, edit: upcoming},
		{typ: "customer.subscription.trial_will_end", path: "subscriptions/sub_123", created: tWillEnd, edit: subscription("trialing", tWillEnd)},
		{typ: "checkout.session.completed", variant: "subscription", path: "checkout/sessions/cs_123", created: tCheckout, edit: session},
		{typ: "checkout.session.async_payment_succeeded", path: "checkout/sessions/cs_123", edit: func(o map[string]any) {
			o["status"], o["payment_status"] = "complete", "paid"
		}},
		{typ: "checkout.session.async_payment_failed", path: "checkout/sessions/cs_123", edit: func(o map[string]any) {
			o["status"], o["payment_status"] = "complete", "unpaid"
		}},
		{typ: "charge.refunded", path: "charges/ch_123", request: true, prev: map[string]any{"amount_refunded": 0, "refunded": false}, edit: func(o map[string]any) {
			o["amount_refunded"], o["refunded"] = o["amount"], true
		}},
		{typ: "payment_intent.processing", path: "payment_intents/pi_123", request: true, edit: func(o map[string]any) { o["status"] = "processing" }},
		{typ: "payment_intent.canceled", path: "payment_intents/pi_123", request: true, edit: func(o map[string]any) {
			o["status"], o["cancellation_reason"], o["canceled_at"] = "canceled", "requested_by_customer", 1764000300
		}},
		{typ: "payment_intent.requires_action", path: "payment_intents/pi_123", request: true, edit: func(o map[string]any) {
			o["status"] = "requires_action"
			o["next_action"] = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{"type": "three_d_secure_redirect"}}
		}},
		{typ: "customer.created", path: "customers/cus_123", created: tCheckout - 1, edit: customer},
		{typ: "customer.updated", path: "customers/cus_123", created: tDefaultPM + 1, request: true, prev: map[string]any{"email": "jenny@example.com"}, edit: customer},
		{typ: "customer.deleted", path: "customers/cus_123", created: tCanceled + 30*day, request: true, edit: customer},
		{typ: "setup_intent.succeeded", path: "setup_intents/seti_123", request: true, edit: func(o map[string]any) { o["status"] = "succeeded" }},
	}
	for i, f := range fixtures {
		obj := map[string]any{"id": "ca_TYlApPlIcAtIoN", "object": "application", "name": "Example Platform"}
		if f.path != "" {
			obj = get(*mock, f.path)
		}
		if f.edit != nil {
			f.edit(obj)
		}
		b := envelope(i, f, obj)
		name := f.typ
		if f.variant != "" {
			name += "+" + f.variant
		}
		write(filepath.Join(*out, "fixture", "events", name+".json"), b)
	}

	// Benchmark payloads: a small event, a typical invoice, and an invoice
	// with 100 line items.
	small, _ := os.ReadFile(filepath.Join(*out, "fixture", "events", "balance.available.json"))
	write(filepath.Join(*out, "testdata", "bench", "balance.available.json"), small)
	inv := get(*mock, "invoices/in_123")
	paidInvoice(inv)
	write(filepath.Join(*out, "testdata", "bench", "invoice.paid.json"), envelope(100, fixture{typ: "invoice.paid"}, inv))
	lines := inv["lines"].(map[string]any)
	line := lines["data"].([]any)[0].(map[string]any)
	var data []any
	for n := range 100 {
		l := clone(line)
		l["id"] = fmt.Sprintf("il_1SbQkR2eZvKYlo2C%08d", n)
		l["description"] = fmt.Sprintf("1 × Seat %d (at $10.00 / month)", n+1)
		data = append(data, l)
	}
	lines["data"], lines["total_count"], lines["has_more"] = data, 100, false
	write(filepath.Join(*out, "testdata", "bench", "invoice.paid.100-lines.json"), envelope(101, fixture{typ: "invoice.paid"}, inv))
}

func paidInvoice(o map[string]any) {
	o["status"], o["paid"], o["amount_paid"], o["amount_remaining"], o["attempted"] = "paid", true, o["amount_due"], 0, true
}

func get(base, path string) map[string]any {
	req, _ := http.NewRequest("GET", base+"/v1/"+path, nil)
	req.SetBasicAuth("sk_test_123", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatalf("stripe-mock: %v (is it running?)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		log.Fatalf("GET %s: %s", path, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		log.Fatal(err)
	}
	return m
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	return c
}

func envelope(i int, f fixture, obj map[string]any) []byte {
	data := map[string]any{"object": obj}
	if f.prev != nil {
		data["previous_attributes"] = f.prev
	}
	var req any = map[string]any{"id": nil, "idempotency_key": nil}
	if f.request {
		req = map[string]any{"id": fmt.Sprintf("req_Xy%012d", 4242+i), "idempotency_key": fmt.Sprintf("8c1f2a4e-%04d-4b7a-9e0d-3f5a6b7c8d9e", i)}
	}
	ev := map[string]any{
		"id":               fmt.Sprintf("evt_1SbQkR2eZvKYlo2C%08d", i),
		"object":           "event",
		"api_version":      stripe.APIVersion,
		"created":          cmp.Or(f.created, int64(1764000000+i*37)),
		"data":             data,
		"livemode":         false,
		"pending_webhooks": 1,
		"request":          req,
		"type":             f.typ,
	}
	if f.account != "" {
		ev["account"] = f.account
	}
	b, err := stripejson.Encode(ev)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func write(path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%-70s %7d bytes\n", path, len(b))
}
