package stripewebhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// The benchmarks compare the library with what users write today, the
// handler of Stripe's Go guide (webhook.ConstructEvent, a switch on the
// type, json.Unmarshal of Data.Raw), in the same run, and print the ratios:
//
//	go test -run '^$' -bench . -benchmem -count 6 . | tee new.txt
//	benchstat new.txt

const benchSecret = "whsec_benchmark_secret"

type benchPayload struct {
	name string
	file string
	n    int // distinct events to cycle through
}

var benchPayloads = []benchPayload{
	{"balance.available_0.8KB", "testdata/bench/balance.available.json", 4096},
	{"invoice.paid_6KB", "testdata/bench/invoice.paid.json", 4096},
	{"invoice.paid_190KB", "testdata/bench/invoice.paid.100-lines.json", 256},
}

type signed struct {
	payload []byte
	header  string
}

// load returns n copies of the payload with distinct event IDs, signed now.
func load(tb testing.TB, p benchPayload) []signed {
	tb.Helper()
	base, err := os.ReadFile(p.file)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]signed, p.n)
	now := time.Now()
	for i := range out {
		pl := webhooktest.WithID(tb, base, "evt_bench_"+strconv.Itoa(i))
		out[i] = signed{pl, fixture.Header(pl, now, benchSecret)}
	}
	return out
}

func nsPerOp(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }

// benchHandler is the library's request path without HTTP: verify, decode
// the envelope, claim in an in-memory store smaller than the set of events
// (so every delivery is new and the store evicts, as in steady state),
// dispatch, complete.
func benchHandler(tb testing.TB, n int, register func(*stripewebhook.Dispatcher)) *stripewebhook.Handler {
	d := stripewebhook.NewDispatcher()
	register(d)
	discard := stripewebhook.WithLogger(slog.New(slog.DiscardHandler))
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(benchSecret),
		stripewebhook.WithDedup(stripewebhook.NewMemoryStore(n/4, discard)), discard)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// runHandle delivers the events through h.Handle, cycling, and returns the
// time per event.
func runHandle(b *testing.B, h *stripewebhook.Handler, events []signed) float64 {
	b.ReportAllocs()
	b.SetBytes(int64(len(events[0].payload)))
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		e := &events[i%len(events)]
		if err := h.Handle(ctx, e.payload, e.header); err != nil {
			b.Fatal(err)
		}
	}
	return nsPerOp(b)
}

// runConstructEvent is the guide's path: webhook.ConstructEvent on each
// event, cycling, then use, which switches on the type; it returns the time
// per event.
func runConstructEvent(b *testing.B, events []signed, use func(stripe.Event) error) float64 {
	b.ReportAllocs()
	b.SetBytes(int64(len(events[0].payload)))
	for i := 0; b.Loop(); i++ {
		e := &events[i%len(events)]
		ev, err := webhook.ConstructEvent(e.payload, e.header, benchSecret)
		if err != nil {
			b.Fatal(err)
		}
		if err := use(ev); err != nil {
			b.Fatal(err)
		}
	}
	return nsPerOp(b)
}

// report prints the ratios; floor is 0 where there is no HMAC floor to
// compare with (a typed decode costs far more than the HMAC).
func report(name string, ours, base, floor float64) {
	if ours == 0 || base == 0 {
		return // filtered out by -bench
	}
	line := fmt.Sprintf("ratio %-32s ours %9.0f ns  baseline %9.0f ns  baseline/ours %6.2fx", name, ours, base, base/ours)
	if floor > 0 {
		line += fmt.Sprintf("  ours/HMAC-floor %5.2fx", ours/floor)
	}
	fmt.Println(line)
}

// BenchmarkUntyped: a callback that does not decode the object, against
// ConstructEvent and a switch.
func BenchmarkUntyped(b *testing.B) {
	for _, p := range benchPayloads {
		events := load(b, p)
		var floor, ours, base float64
		b.Run(p.name+"/hmac-floor", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(events[0].payload)))
			key := []byte(benchSecret)
			var sum [32]byte
			for i := 0; b.Loop(); i++ {
				e := &events[i%len(events)]
				mac := hmac.New(sha256.New, key)
				mac.Write([]byte("1764000000."))
				mac.Write(e.payload)
				mac.Sum(sum[:0])
			}
			floor = nsPerOp(b)
		})
		b.Run(p.name+"/stripewebhook", func(b *testing.B) {
			var seen int
			h := benchHandler(b, len(events), func(d *stripewebhook.Dispatcher) {
				d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error { seen += len(e.ID); return nil })
			})
			ours = runHandle(b, h, events)
		})
		b.Run(p.name+"/constructevent", func(b *testing.B) {
			var seen int
			base = runConstructEvent(b, events, func(ev stripe.Event) error {
				switch ev.Type {
				case "invoice.paid", "balance.available":
					seen += len(ev.ID)
				}
				return nil
			})
		})
		report("untyped "+p.name, ours, base, floor)
	}
}

// BenchmarkTyped: a callback that takes a *stripe.Invoice, against
// ConstructEvent and json.Unmarshal of Data.Raw into a stripe.Invoice.
func BenchmarkTyped(b *testing.B) {
	for _, p := range benchPayloads[1:] {
		events := load(b, p)
		var ours, base float64
		b.Run(p.name+"/stripewebhook", func(b *testing.B) {
			var total int64
			h := benchHandler(b, len(events), func(d *stripewebhook.Dispatcher) {
				stripewebhook.On(d, "invoice.paid", func(_ context.Context, _ *stripewebhook.Event, inv *stripe.Invoice) error {
					total += inv.AmountPaid
					return nil
				})
			})
			ours = runHandle(b, h, events)
		})
		b.Run(p.name+"/constructevent+unmarshal", func(b *testing.B) {
			var total int64
			base = runConstructEvent(b, events, func(ev stripe.Event) error {
				switch ev.Type {
				case "invoice.paid":
					var inv stripe.Invoice
					if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
						return err
					}
					total += inv.AmountPaid
				}
				return nil
			})
		})
		report("typed "+p.name, ours, base, 0)
	}
}

// BenchmarkVerifySecrets: Verify with 1, 2 and 3 secrets (the last one
// matching): the header is parsed once, so the cost grows by one HMAC per
// secret and nothing else.
func BenchmarkVerifySecrets(b *testing.B) {
	events := load(b, benchPayloads[1])
	var one float64
	for n := 1; n <= 3; n++ {
		secrets := []string{benchSecret}
		for i := 1; i < n; i++ {
			secrets = append([]string{"whsec_other_" + strconv.Itoa(i)}, secrets...)
		}
		v, err := stripewebhook.NewVerifier(stripewebhook.Secrets(secrets...))
		if err != nil {
			b.Fatal(err)
		}
		var got float64
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := &events[i%len(events)]
				if _, err := v.Verify(e.payload, e.header); err != nil {
					b.Fatal(err)
				}
			}
			got = nsPerOp(b)
		})
		if n == 1 {
			one = got
		}
		if one == 0 || got == 0 {
			continue
		}
		fmt.Printf("ratio verify secrets=%d: %.2fx the cost of one secret\n", n, got/one)
	}
}

// BenchmarkThin: the request path for a thin event (a callback that does
// not fetch) against a snapshot event of similar size, in the same run.
func BenchmarkThin(b *testing.B) {
	var ns, allocs [2]float64
	for i, p := range []benchPayload{
		{"thin_v1.billing.meter.error_report_triggered", "fixture/events/v1.billing.meter.error_report_triggered.json", 4096},
		{"snapshot_balance.available", "testdata/bench/balance.available.json", 4096},
	} {
		events := load(b, p)
		b.Run(p.name, func(b *testing.B) {
			var seen int
			h := benchHandler(b, len(events), func(d *stripewebhook.Dispatcher) {
				d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error { seen += len(e.ID); return nil })
			})
			allocs[i] = allocsPerEvent(b, events, func(d *stripewebhook.Dispatcher) {
				d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
			})
			ns[i] = runHandle(b, h, events)
		})
	}
	if ns[0] > 0 && ns[1] > 0 {
		fmt.Printf("ratio thin/snapshot time %.2fx (thin %.0f ns, snapshot %.0f ns)  allocs/event thin %.0f snapshot %.0f\n",
			ns[0]/ns[1], ns[0], ns[1], allocs[0], allocs[1])
	}
}

// allocsPerEvent delivers distinct events to a fresh handler and returns
// the allocations per delivery.
func allocsPerEvent(tb testing.TB, events []signed, register func(*stripewebhook.Dispatcher)) float64 {
	h := benchHandler(tb, len(events), register)
	next := 0
	return testing.AllocsPerRun(len(events)/2, func() {
		e := &events[next%len(events)]
		next++
		if err := h.Handle(context.Background(), e.payload, e.header); err != nil {
			tb.Fatal(err)
		}
	})
}
