package webhooktest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

func TestSignatureVector(t *testing.T) {
	payload := []byte("{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}")
	at := time.Unix(12345, 0)
	assert.Equal(t, "2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e", fixture.Signature(payload, at, "whsec_test_secret"))
	assert.Equal(t, "t=12345,v1=2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e,v1=b8673e94394f9950c036c0f4116d1ad346e682dbb57ece6b4c74e46113ab654a",
		fixture.Header(payload, at, "whsec_test_secret", "whsec_test_secret_rolled_key"))
}

// The fixtures the project promises, each delivered through a real handler
// and decoded into its stripe-go type.
func TestFixtures(t *testing.T) {
	want := map[string]func(*stripewebhook.Event) error{
		"payment_intent.succeeded":         decode[stripe.PaymentIntent],
		"payment_intent.payment_failed":    decode[stripe.PaymentIntent],
		"payment_method.attached":          decode[stripe.PaymentMethod],
		"charge.succeeded":                 decode[stripe.Charge],
		"charge.dispute.created":           decode[stripe.Dispute],
		"balance.available":                decode[stripe.Balance],
		"invoice.created":                  decode[stripe.Invoice],
		"invoice.paid":                     decode[stripe.Invoice],
		"customer.subscription.created":    decode[stripe.Subscription],
		"customer.subscription.updated":    decode[stripe.Subscription],
		"customer.subscription.deleted":    decode[stripe.Subscription],
		"checkout.session.completed":       decode[stripe.CheckoutSession],
		"account.updated":                  decode[stripe.Account],
		"account.application.deauthorized": decode[stripe.Application],
		"account.external_account.updated": decode[stripe.AccountExternalAccount],
		"payout.failed":                    decode[stripe.Payout],
		"person.updated":                   decode[stripe.Person],

		"invoice.payment_failed":                   decode[stripe.Invoice],
		"invoice.finalized":                        decode[stripe.Invoice],
		"invoice.upcoming":                         decode[stripe.Invoice],
		"customer.subscription.trial_will_end":     decode[stripe.Subscription],
		"checkout.session.async_payment_succeeded": decode[stripe.CheckoutSession],
		"checkout.session.async_payment_failed":    decode[stripe.CheckoutSession],
		"charge.refunded":                          decode[stripe.Charge],
		"payment_intent.processing":                decode[stripe.PaymentIntent],
		"payment_intent.canceled":                  decode[stripe.PaymentIntent],
		"payment_intent.requires_action":           decode[stripe.PaymentIntent],
		"customer.created":                         decode[stripe.Customer],
		"customer.updated":                         decode[stripe.Customer],
		"customer.deleted":                         decode[stripe.Customer],
		"setup_intent.succeeded":                   decode[stripe.SetupIntent],
		"checkout.session.completed+subscription": func(e *stripewebhook.Event) error {
			cs, err := stripewebhook.Decode[stripe.CheckoutSession](e)
			if err != nil {
				return err
			}
			if cs.Mode != stripe.CheckoutSessionModeSubscription || cs.Customer == nil || cs.Subscription == nil {
				return fmt.Errorf("not a subscription-mode session with a customer: %+v", cs)
			}
			return nil
		},
	}
	for typ := range want {
		assert.Contains(t, fixture.Names(), typ)
	}
	const secret = "whsec_fixtures"
	for _, typ := range fixture.Names() {
		t.Run(typ, func(t *testing.T) {
			payload := webhooktest.Fixture(t, typ)
			assert.True(t, strings.HasPrefix(string(payload), "{\n  \"id\": \"evt_"), "pretty-printed as Stripe sends it")
			var got *stripewebhook.Event
			d := stripewebhook.NewDispatcher()
			d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error {
				got = e.Clone()
				if check := want[typ]; check != nil {
					return check(e)
				}
				return nil
			})
			h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret))
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", payload, secret))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.NotNil(t, got)
			eventType, _, _ := strings.Cut(typ, "+")
			assert.Equal(t, stripe.EventType(eventType), got.Type)
			connect := strings.HasPrefix(typ, "account.") || typ == "payout.failed" || typ == "person.updated"
			assert.Equal(t, connect, got.Account != "", "Connect events carry the account")
			if strings.HasSuffix(typ, ".updated") {
				assert.NotEmpty(t, got.PreviousAttributes)
			}
		})
	}
}

func decode[T any](e *stripewebhook.Event) error {
	v, err := stripewebhook.Decode[T](e)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(v)
	if len(b) < 20 {
		return fmt.Errorf("decoded almost nothing: %s", b)
	}
	return nil
}

func TestWithID(t *testing.T) {
	p := webhooktest.Fixture(t, "invoice.paid")
	q := webhooktest.WithID(t, p, "evt_other")
	e, err := stripewebhook.ParseEvent(q)
	require.NoError(t, err)
	assert.Equal(t, "evt_other", e.ID)
	assert.Equal(t, len(p)-len(`"evt_1SbQkR2eZvKYlo2C00000007"`)+len(`"evt_other"`), len(q))
	compact := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
	e, err = stripewebhook.ParseEvent(webhooktest.WithID(t, compact, "evt_2"))
	require.NoError(t, err)
	assert.Equal(t, "evt_2", e.ID)
}

func TestNewRequest(t *testing.T) {
	p := webhooktest.Fixture(t, "balance.available")
	req := webhooktest.NewRequest(t, "/stripe/events", p, "whsec_x", "whsec_y")
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/stripe/events", req.URL.Path)
	for _, secret := range []string{"whsec_x", "whsec_y"} {
		v, err := stripewebhook.NewVerifier(stripewebhook.Secrets(secret))
		require.NoError(t, err)
		_, err = v.Verify(p, req.Header.Get(stripewebhook.SignatureHeader))
		require.NoError(t, err, secret)
	}

	at := time.Unix(1764000000, 0)
	req = webhooktest.NewRequestAt(t, "http://example.com/hooks", p, at, "whsec_x")
	assert.Equal(t, "/hooks", req.URL.Path)
	assert.Equal(t, fixture.Header(p, at, "whsec_x"), req.Header.Get(stripewebhook.SignatureHeader))
}

func TestVary(t *testing.T) {
	base := webhooktest.Fixture(t, "invoice.paid")
	p := webhooktest.Fixture(t, "invoice.paid",
		fixture.ID("evt_varied"),
		fixture.Type("invoice.payment_failed"),
		fixture.Account("acct_123"),
		fixture.Livemode(true),
		fixture.APIVersion("2024-06-20"),
		fixture.Created(1700000000),
		fixture.ObjectField("status", "open"),
		fixture.ObjectField("metadata.order_id", "ord_42"),
		fixture.PreviousAttributes(map[string]any{"status": "draft"}))
	assert.True(t, strings.HasPrefix(string(p), "{\n  \"id\": \"evt_varied\",\n  \"object\": \"event\","), "still pretty-printed as Stripe sends it:\n%.80s", p)
	e, err := stripewebhook.ParseEvent(p)
	require.NoError(t, err)
	assert.Equal(t, "evt_varied", e.ID)
	assert.Equal(t, stripe.EventType("invoice.payment_failed"), e.Type)
	assert.Equal(t, "acct_123", e.Account)
	assert.True(t, e.Livemode)
	assert.Equal(t, "2024-06-20", e.APIVersion)
	assert.Equal(t, int64(1700000000), e.Created)
	inv, err := stripewebhook.Decode[stripe.Invoice](e)
	require.NoError(t, err)
	assert.Equal(t, stripe.InvoiceStatusOpen, inv.Status)
	assert.Equal(t, "ord_42", inv.Metadata["order_id"])
	prev, err := stripewebhook.DecodePrevious[stripe.Invoice](e)
	require.NoError(t, err)
	assert.Equal(t, stripe.InvoiceStatusDraft, prev.Status)

	orig, err := stripewebhook.ParseEvent(base)
	require.NoError(t, err)
	origInv, err := stripewebhook.Decode[stripe.Invoice](orig)
	require.NoError(t, err)
	assert.Equal(t, origInv.AmountPaid, inv.AmountPaid, "what no edit touched is kept, numbers exactly")
	assert.Equal(t, origInv.Lines.Data[0].ID, inv.Lines.Data[0].ID)

	q := webhooktest.Vary(t, p, fixture.Account(""), fixture.PreviousAttributes(nil))
	e, err = stripewebhook.ParseEvent(q)
	require.NoError(t, err)
	assert.Empty(t, e.Account)
	assert.Empty(t, e.PreviousAttributes)
}

// Testing an application's callback through the real handler.
func Example() {
	var t testing.TB = exampleT{} // in a test: the *testing.T
	d := stripewebhook.NewDispatcher()
	stripewebhook.On(d, "payment_intent.succeeded", func(ctx context.Context, e *stripewebhook.Event, pi *stripe.PaymentIntent) error {
		fmt.Println("fulfil", pi.ID, pi.Status)
		return nil
	})
	h, _ := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_test"))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", webhooktest.Fixture(t, "payment_intent.succeeded"), "whsec_test"))
	fmt.Println(rec.Code)
	// Output:
	// fulfil pi_123 succeeded
	// 200
}

type exampleT struct{ testing.TB }

func (exampleT) Helper()                           {}
func (exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
