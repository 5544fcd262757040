package stripewebhook_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
)

func TestMemoryStoreConformance(t *testing.T) {
	dedupstoretest.Run(t, dedupstoretest.Config{
		New: func(*testing.T) stripewebhook.Store { return stripewebhook.NewMemoryStore(0) },
	})
}

func TestMemoryStoreBounded(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1764000000, 0)
	m := stripewebhook.NewMemoryStore(3, stripewebhook.WithClock(func() time.Time { return now }))
	claim := func(k string) stripewebhook.Claim {
		c, err := m.Claim(ctx, k, time.Minute)
		require.NoError(t, err)
		return c
	}
	// Three claims in progress fill the store: a fourth cannot evict them.
	a, b, c := claim("a"), claim("b"), claim("c")
	_, err := m.Claim(ctx, "d", time.Minute)
	require.ErrorIs(t, err, stripewebhook.ErrStoreFull)

	// Completed entries are evicted, least recently written first.
	require.NoError(t, m.Complete(ctx, "b", b.Token, time.Hour))
	require.NoError(t, m.Complete(ctx, "a", a.Token, time.Hour))
	assert.Equal(t, stripewebhook.Claimed, claim("d").Status) // evicts b
	assert.Equal(t, stripewebhook.Done, claim("a").Status)
	assert.Equal(t, stripewebhook.Claimed, claim("b").Status, "b was evicted")
	assert.Equal(t, 3, m.Len())

	// Expired claims are taken over and evicted.
	now = now.Add(2 * time.Minute)
	assert.Equal(t, stripewebhook.Claimed, claim("c").Status, "lease expired")
	require.ErrorIs(t, m.Complete(ctx, "c", c.Token, time.Hour), stripewebhook.ErrClaimLost)
	assert.Equal(t, stripewebhook.Claimed, claim("e").Status)
	assert.LessOrEqual(t, m.Len(), 3)

	// Retention ends.
	now = now.Add(2 * time.Hour)
	assert.Equal(t, stripewebhook.Claimed, claim("a").Status)
}

func TestClaimStatusString(t *testing.T) {
	assert.Equal(t, "claimed", stripewebhook.Claimed.String())
	assert.Equal(t, "in progress", stripewebhook.InProgress.String())
	assert.Equal(t, "done", stripewebhook.Done.String())
	assert.Equal(t, "ClaimStatus(9)", stripewebhook.ClaimStatus(9).String())
}

// Past its bound, the memory store evicts completed events before their
// retention ends, and says so, once.
func TestMemoryStoreSaysWhenRetentionIsShortened(t *testing.T) {
	var logs bytes.Buffer
	m := stripewebhook.NewMemoryStore(2, stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	for i := range 10 {
		key := "evt_" + strconv.Itoa(i)
		c, err := m.Claim(ctx, key, time.Minute)
		require.NoError(t, err)
		require.NoError(t, m.Complete(ctx, key, c.Token, time.Hour))
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "evicts completed events before their retention ends"), logs.String())
	assert.Contains(t, logs.String(), "max_entries=2")
}
