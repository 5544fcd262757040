package stripewebhook_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

func TestEndpointDrift(t *testing.T) {
	handled := []string{"invoice.paid", "customer.subscription.updated"}
	for _, tt := range []struct {
		name      string
		we        stripe.WebhookEndpoint
		catchAll  bool
		ok        bool
		unhandled []string
		neverSent []string
		version   bool
	}{
		{"in sync", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: handled, APIVersion: stripe.APIVersion}, false, true, nil, nil, false},
		{"drift both ways", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: []string{"invoice.paid", "charge.succeeded"}}, false, false, []string{"charge.succeeded"}, []string{"customer.subscription.updated"}, false},
		{"every type, no catch-all", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: []string{"*"}}, false, false, []string{"*"}, nil, false},
		{"every type, catch-all", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: []string{"*"}}, true, true, nil, nil, false},
		{"disabled", stripe.WebhookEndpoint{Status: "disabled", EnabledEvents: handled}, false, false, nil, nil, false},
		{"other release train", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: handled, APIVersion: "2024-06-20"}, false, false, nil, nil, true},
		{"same train", stripe.WebhookEndpoint{Status: "enabled", EnabledEvents: handled, APIVersion: "2025-09-30.basil"}, false, true, nil, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.we.Secret = "whsec_must_not_print"
			r := stripewebhook.EndpointDrift(&tt.we, handled, tt.catchAll)
			assert.Equal(t, tt.ok, r.OK(), r.String())
			assert.Equal(t, tt.unhandled, r.Unhandled)
			assert.Equal(t, tt.neverSent, r.NeverSent)
			assert.Equal(t, tt.version, r.VersionDrift != "")
			assert.NotContains(t, r.String(), "whsec_")
		})
	}
}

func TestLookupAndSyncEndpoint(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	api.AddEndpoint(t, []byte(`{"id":"we_1","object":"webhook_endpoint","url":"https://example.com/webhook","status":"enabled","enabled_events":["charge.succeeded"],"api_version":null}`))
	api.AddEndpoint(t, []byte(`{"id":"we_2","object":"webhook_endpoint","url":"https://example.com/other","status":"enabled","enabled_events":["*"]}`))
	c := api.Client()
	ctx := context.Background()
	we, err := stripewebhook.LookupEndpoint(ctx, c, "https://example.com/webhook")
	require.NoError(t, err)
	assert.Equal(t, "we_1", we.ID)
	we, err = stripewebhook.LookupEndpoint(ctx, c, "we_2")
	require.NoError(t, err)
	assert.Equal(t, []string{"*"}, we.EnabledEvents)
	_, err = stripewebhook.LookupEndpoint(ctx, c, "https://example.com/nope")
	require.ErrorContains(t, err, "the account has 2")

	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.*", func(context.Context, *stripewebhook.Event) error { return nil })
	we, err = stripewebhook.SyncEndpoint(ctx, c, "we_1", d.EnabledEvents(), d.CatchAll())
	require.NoError(t, err)
	assert.Equal(t, d.EnabledEvents(), we.EnabledEvents)
	r := stripewebhook.EndpointDrift(we, d.EnabledEvents(), d.CatchAll())
	assert.True(t, r.OK(), r.String())
}
