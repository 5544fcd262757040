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
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

func TestSignatureVector(t *testing.T) {
	payload := []byte("{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\"\n}")
	at := time.Unix(12345, 0)
	assert.Equal(t, "2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e", webhooktest.Signature(payload, at, "whsec_test_secret"))
	assert.Equal(t, "t=12345,v1=2672d138c9a412830f3bfe2ecc5bfb3277cf6f5b49d0119d77dd6cb64da1257e,v1=b8673e94394f9950c036c0f4116d1ad346e682dbb57ece6b4c74e46113ab654a",
		webhooktest.Header(payload, at, "whsec_test_secret", "whsec_test_secret_rolled_key"))
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
	}
	for typ := range want {
		assert.Contains(t, webhooktest.FixtureTypes(), typ)
	}
	const secret = "whsec_fixtures"
	for _, typ := range webhooktest.FixtureTypes() {
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
			h.ServeHTTP(rec, webhooktest.NewRequest(t, secret, payload))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.NotNil(t, got)
			assert.Equal(t, stripe.EventType(typ), got.Type)
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
	req := webhooktest.NewRequest(t, "whsec_x", p)
	assert.Equal(t, http.MethodPost, req.Method)
	v, err := stripewebhook.NewVerifier(stripewebhook.Secrets("whsec_x"))
	require.NoError(t, err)
	_, err = v.Verify(p, req.Header.Get(stripewebhook.SignatureHeader))
	require.NoError(t, err)
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
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "whsec_test", webhooktest.Fixture(t, "payment_intent.succeeded")))
	fmt.Println(rec.Code)
	// Output:
	// fulfil pi_123 succeeded
	// 200
}

type exampleT struct{ testing.TB }

func (exampleT) Helper()                           {}
func (exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
