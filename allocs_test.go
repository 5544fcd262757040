package stripewebhook_test

import (
	"context"
	"testing"

	"github.com/stripewebhook/stripewebhook"
)

// The request path allocates at most 5 times per event, whatever the
// payload's size and kind: the event, its ID, the dedup entry, the settle
// context (a thin event's related object too), and nothing in proportion
// to the body.
func TestAllocationsPerEvent(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; scripts/test.sh runs this test without it")
	}
	for _, file := range []string{"testdata/bench/balance.available.json", "testdata/bench/invoice.paid.100-lines.json",
		"fixture/events/v1.billing.meter.error_report_triggered.json"} {
		events := load(t, benchPayload{file: file, n: 1024})
		allocs := allocsPerEvent(t, events, func(d *stripewebhook.Dispatcher) {
			d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
		})
		if allocs > 5 {
			t.Errorf("%s: %.1f allocations per event, want at most 5", file, allocs)
		}
		t.Logf("%s: %.0f allocations per event", file, allocs)
	}
}
