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

// Refetch gets the object's current state, with Stripe-Account for a
// connected account's event, once per event.
func TestRefetch(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	api.AddObject("/v1/subscriptions/sub_1SbQkR2eZvKYlo2CsUbScR1p", []byte(`{"id":"sub_1SbQkR2eZvKYlo2CsUbScR1p","object":"subscription","status":"canceled"}`))
	api.AddObject("/v1/payouts/po_123", []byte(`{"id":"po_123","object":"payout","status":"paid"}`))
	d := stripewebhook.NewDispatcher()
	c := api.Client()
	var subs []*stripe.Subscription
	for range 2 {
		stripewebhook.On(d, "customer.subscription.updated", func(ctx context.Context, e *stripewebhook.Event, old *stripe.Subscription) error {
			now, err := stripewebhook.Refetch[stripe.Subscription](ctx, c, e)
			subs = append(subs, now)
			return err
		})
	}
	var payoutErr error
	d.HandleFunc("payout.failed", func(ctx context.Context, e *stripewebhook.Event) error {
		p, err := stripewebhook.Refetch[stripe.Payout](ctx, c, e)
		if err == nil && p.Status != "paid" {
			t.Errorf("payout %+v", p)
		}
		_, payoutErr = stripewebhook.Refetch[stripe.Invoice](ctx, c, e)
		return err
	})
	ctx := context.Background()
	sub, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "customer.subscription.updated"))
	require.NoError(t, err)
	require.NoError(t, d.Dispatch(ctx, sub))
	require.Len(t, subs, 2)
	assert.Equal(t, stripe.SubscriptionStatusCanceled, subs[0].Status, "the current state, not the event's snapshot")
	assert.Same(t, subs[0], subs[1], "fetched once")

	payout, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "payout.failed"))
	require.NoError(t, err)
	require.NoError(t, d.Dispatch(ctx, payout))
	assert.ErrorIs(t, payoutErr, stripewebhook.ErrObjectMismatch)

	var paths, accounts []string
	for _, r := range api.Requests() {
		paths = append(paths, r.Path)
		accounts = append(accounts, r.StripeAccount)
	}
	assert.Equal(t, []string{"/v1/subscriptions/sub_1SbQkR2eZvKYlo2CsUbScR1p", "/v1/payouts/po_123"}, paths)
	assert.Equal(t, []string{"", payout.Account}, accounts, "a connected account's object is fetched with its Stripe-Account")

	thin, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "v2.core.event_destination.ping"))
	require.NoError(t, err)
	_, err = stripewebhook.Refetch[stripe.V2EventDestination](ctx, c, thin)
	assert.ErrorIs(t, err, stripewebhook.ErrNoObject)
	fresh, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "customer.subscription.updated"))
	require.NoError(t, err)
	_, err = stripewebhook.Refetch[stripe.Subscription](ctx, nil, fresh)
	assert.ErrorIs(t, err, stripewebhook.ErrNoClient)
}
