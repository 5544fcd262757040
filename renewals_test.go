package stripewebhook_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
)

// A synchronous delivery whose callback runs for several leases keeps its
// claim: Stripe's retry meanwhile gets 409 and runs nothing.
func TestHandlerRenewsTheClaimOfALongCallback(t *testing.T) {
	var runs atomic.Int32
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error {
		runs.Add(1)
		time.Sleep(time.Second)
		return nil
	}))
	h := guardHandler(t, d, stripewebhook.WithLease(200*time.Millisecond))
	p := invoiceEvent(t, "evt_sync_long", "in_sync_long")
	first := make(chan error, 1)
	go func() { first <- deliverSigned(t, h, p) }()
	time.Sleep(600 * time.Millisecond) // three leases into the callback
	err := deliverSigned(t, h, p)
	assert.ErrorIs(t, err, stripewebhook.ErrInProgress)
	assert.Equal(t, 409, stripewebhook.StatusCode(err))
	require.NoError(t, <-first)
	require.NoError(t, deliverSigned(t, h, p), "a duplicate after the run is acknowledged")
	assert.Equal(t, int32(1), runs.Load())
}
