package stripewebhook_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// The request path allocates at most 5 times per event outside its pooled
// buffers, whatever the payload's size: the event ID, the dedup entry, the
// settle context, and nothing in proportion to the body.
func TestAllocationsPerEvent(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; scripts/test.sh runs this test without it")
	}
	for _, file := range []string{"testdata/bench/balance.available.json", "testdata/bench/invoice.paid.100-lines.json"} {
		base, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		const n = 64
		type signed struct {
			p []byte
			h string
		}
		events := make([]signed, n)
		for i := range events {
			p := webhooktest.WithID(t, base, "evt_allocs_"+strconv.Itoa(i))
			events[i] = signed{p, webhooktest.Header(p, time.Now(), testSecret)}
		}
		d := stripewebhook.NewDispatcher()
		d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
			stripewebhook.WithDedup(stripewebhook.NewMemoryStore(n/4)),
			stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			e := &events[i%n]
			i++
			if err := h.Handle(context.Background(), e.p, e.h); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 5 {
			t.Errorf("%s: %.1f allocations per event, want at most 5", file, allocs)
		}
	}
}
