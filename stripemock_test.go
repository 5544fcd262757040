package stripewebhook_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// stripeMockEnv names the stripe-mock server (go install
// github.com/stripe/stripe-mock@latest) that checks the shape of the
// recovery requests against Stripe's OpenAPI spec; scripts/test.sh sets it.
const stripeMockEnv = "STRIPEWEBHOOK_STRIPE_MOCK_URL"

func stripeMock(t *testing.T) *stripe.Client {
	url := os.Getenv(stripeMockEnv)
	if url == "" {
		t.Skipf("set %s (e.g. http://127.0.0.1:12111, a running stripe-mock) to check the API requests' shapes", stripeMockEnv)
	}
	return stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})))
}

// stripe-mock validates every parameter against Stripe's OpenAPI spec: the
// listing (delivery_success, created[gte], types[], limit, Stripe-Account),
// the endpoint's retrieval and update, and a refetch are requests Stripe
// accepts, and their answers decode.
func TestRequestShapesAgainstStripeMock(t *testing.T) {
	c := stripeMock(t)
	ctx := context.Background()

	events, err := stripewebhook.ListUndelivered(ctx, c, time.Now().Add(-72*time.Hour), []string{"invoice.paid", "customer.subscription.updated"}, "acct_123")
	require.NoError(t, err)
	require.NotEmpty(t, events)
	assert.NotEmpty(t, events[0].ID)
	assert.NotEmpty(t, events[0].Object)

	d := stripewebhook.NewDispatcher()
	ran := 0
	d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { ran++; return nil })
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	r, err := h.Reconcile(ctx, c, stripewebhook.ReconcileOptions{})
	require.NoError(t, err)
	assert.Positive(t, r.Listed)
	assert.Equal(t, r.Listed, r.Ran+r.Skipped+r.Ignored)
	assert.Equal(t, r.Ran, ran)

	we, err := stripewebhook.LookupEndpoint(ctx, c, "we_123")
	require.NoError(t, err)
	assert.Equal(t, "we_123", we.ID)
	_, err = stripewebhook.SyncEndpoint(ctx, c, we.ID, []string{"invoice.paid", "invoice.payment_failed"}, false)
	require.NoError(t, err)

	inv, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "invoice.paid")) // data.object is in_1SbQkR2eZvKYlo2CiNvOiCe1
	require.NoError(t, err)
	got, err := stripewebhook.Refetch[stripe.Invoice](ctx, c, inv)
	require.NoError(t, err)
	assert.Equal(t, "in_1SbQkR2eZvKYlo2CiNvOiCe1", got.ID)
}
