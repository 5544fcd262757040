package otelwebhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/otelwebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const secret = "whsec_otel_test"

type env struct {
	h      *stripewebhook.Handler
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newEnv(t testing.TB, fail bool, opts ...stripewebhook.HandlerOption) *env {
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	obs, err := otelwebhook.New(
		otelwebhook.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
		otelwebhook.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error {
		if fail {
			return errors.New("db down: postgres://app:hunter2@db")
		}
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret),
		append([]stripewebhook.HandlerOption{stripewebhook.WithObserver(obs), stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{h, spans, reader}
}

func attrs(kv []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, a := range kv {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}

// Each outcome of the status policy gives the expected span (status,
// attributes, no secret) and metric points.
func TestSpansAndMetrics(t *testing.T) {
	inv := webhooktest.Fixture(t, "invoice.paid")
	now := time.Now()
	for _, tt := range []struct {
		name    string
		fail    bool
		opts    []stripewebhook.HandlerOption
		req     *http.Request
		status  int
		outcome string
		reason  string
		typ     string
		spanErr bool
		runs    int
	}{
		{"handled", false, nil, webhooktest.NewRequestAt(t, "/webhook", inv, now, secret), 200, "handled", "", "invoice.paid", false, 1},
		{"unhandled", false, nil, webhooktest.NewRequestAt(t, "/webhook", webhooktest.Fixture(t, "charge.succeeded"), now, secret), 200, "unhandled", "", "charge.succeeded", false, 0},
		{"unknown type", false, nil, webhooktest.NewRequestAt(t, "/webhook", webhooktest.Fixture(t, "invoice.paid", fixture.Type("brand.new")), now, secret), 200, "unhandled", "", "other", false, 0},
		{"failed", true, nil, webhooktest.NewRequestAt(t, "/webhook", inv, now, secret), 500, "failed", "", "invoice.paid", true, 1},
		{"bad signature", false, nil, webhooktest.NewRequestAt(t, "/webhook", inv, now, "whsec_forged"), 400, "rejected", "bad_signature", "none", false, 0},
		{"stale", false, nil, webhooktest.NewRequestAt(t, "/webhook", inv, now.Add(-time.Hour), secret), 400, "rejected", "stale", "none", false, 0},
		{"too large", false, []stripewebhook.HandlerOption{stripewebhook.WithMaxBodyBytes(10)}, webhooktest.NewRequestAt(t, "/webhook", inv, now, secret), 413, "rejected", "too_large", "none", false, 0},
		{"store down", false, []stripewebhook.HandlerOption{stripewebhook.WithDedup(downStore{})}, webhooktest.NewRequestAt(t, "/webhook", inv, now, secret), 503, "store_unavailable", "", "invoice.paid", true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.fail, tt.opts...)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, tt.req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			spans := e.spans.Ended()
			if len(spans) != 1+tt.runs {
				t.Fatalf("%d spans, want %d", len(spans), 1+tt.runs)
			}
			del := spans[len(spans)-1]
			if del.Name() != "stripewebhook.delivery" {
				t.Fatalf("last span %q", del.Name())
			}
			a := attrs(del.Attributes())
			if a["stripewebhook.outcome"] != tt.outcome || a["http.response.status_code"] != strconv.Itoa(tt.status) ||
				a["stripe.event.type"] != tt.typ || a["stripewebhook.reason"] != tt.reason {
				t.Fatalf("span attributes %v", a)
			}
			if tt.typ != "none" && a["stripe.event.id"] == "" {
				t.Fatalf("no event id on the span: %v", a)
			}
			if (del.Status().Code == codes.Error) != tt.spanErr {
				t.Fatalf("span status %v", del.Status())
			}
			for _, s := range spans {
				for k, v := range attrs(s.Attributes()) {
					for _, leak := range []string{secret, "hunter2", "v1="} {
						if contains(v, leak) {
							t.Fatalf("span attribute %s=%q leaks %q", k, v, leak)
						}
					}
				}
			}
			if tt.runs == 1 {
				run := spans[0]
				if run.Name() != "stripewebhook.run" || run.Parent().SpanID() != del.SpanContext().SpanID() {
					t.Fatalf("run span %q, parent %v", run.Name(), run.Parent())
				}
			}

			var rm metricdata.ResourceMetrics
			if err := e.reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			got := map[string]metricdata.Aggregation{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					got[m.Name] = m.Data
				}
			}
			sum, ok := got[otelwebhook.MetricDeliveries].(metricdata.Sum[int64])
			if !ok || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != 1 {
				t.Fatalf("deliveries: %+v", got[otelwebhook.MetricDeliveries])
			}
			pa := attrs(sum.DataPoints[0].Attributes.ToSlice())
			if pa["http.response.status_code"] != strconv.Itoa(tt.status) || pa["stripewebhook.outcome"] != tt.outcome || pa["stripe.event.type"] != tt.typ {
				t.Fatalf("delivery point attributes %v", pa)
			}
			if _, hasID := pa["stripe.event.id"]; hasID {
				t.Fatal("an event id as a metric label: unbounded cardinality")
			}
			if h, ok := got[otelwebhook.MetricDeliveryDuration].(metricdata.Histogram[float64]); !ok || h.DataPoints[0].Count != 1 {
				t.Fatalf("duration: %+v", got[otelwebhook.MetricDeliveryDuration])
			}
			_, hasAge := got[otelwebhook.MetricEventAge]
			if hasAge != (tt.typ != "none") {
				t.Fatalf("event age recorded: %v", hasAge)
			}
			_, hasStore := got[otelwebhook.MetricStoreDuration]
			if hasStore != (tt.typ == "invoice.paid") {
				t.Fatalf("store duration recorded: %v", hasStore)
			}
		})
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

type downStore struct{}

var errDown = errors.New("dial tcp: connection refused")

func (downStore) Claim(context.Context, string, time.Duration) (stripewebhook.Claim, error) {
	return stripewebhook.Claim{}, errDown
}
func (downStore) Complete(context.Context, string, string, time.Duration) error { return errDown }
func (downStore) Release(context.Context, string, string) error                 { return errDown }
func (downStore) Extend(context.Context, string, string, time.Duration) error   { return errDown }

// BenchmarkObserver: the request path without an observer, with a no-op
// one, and with this package's on the OpenTelemetry SDK: metrics only (a
// manual reader, the no-op tracer provider, as with tracing off), and with
// spans recorded too, in the same run.
func BenchmarkObserver(b *testing.B) {
	inv := webhooktest.Fixture(b, "invoice.paid")
	const n = 4096
	type signed struct {
		payload []byte
		header  string
	}
	events := make([]signed, n)
	now := time.Now()
	for i := range events {
		p := webhooktest.WithID(b, inv, fmt.Sprintf("evt_obs_%d", i))
		events[i] = signed{p, fixture.Header(p, now, secret)}
	}
	build := func(opts ...stripewebhook.HandlerOption) *stripewebhook.Handler {
		d := stripewebhook.NewDispatcher()
		d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
		discard := stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret),
			append([]stripewebhook.HandlerOption{discard, stripewebhook.WithDedup(stripewebhook.NewMemoryStore(n/4, discard))}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	metricsOnly, err := otelwebhook.New(
		otelwebhook.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelwebhook.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))))
	if err != nil {
		b.Fatal(err)
	}
	withSpans, err := otelwebhook.New(
		otelwebhook.WithTracerProvider(sdktrace.NewTracerProvider()),
		otelwebhook.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))))
	if err != nil {
		b.Fatal(err)
	}
	ns := map[string]float64{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for _, c := range []struct {
		name string
		opts []stripewebhook.HandlerOption
	}{
		{"off", nil},
		{"noop", []stripewebhook.HandlerOption{stripewebhook.WithObserver(noop{})}},
		{"otel-metrics", []stripewebhook.HandlerOption{stripewebhook.WithObserver(metricsOnly)}},
		{"otel-metrics+spans", []stripewebhook.HandlerOption{stripewebhook.WithObserver(withSpans)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := build(c.opts...)
			b.ReportAllocs()
			ctx := context.Background()
			for i := 0; b.Loop(); i++ {
				e := &events[i%n]
				if err := h.Handle(ctx, e.payload, e.header); err != nil {
					b.Fatal(err)
				}
			}
			ns[c.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		// The same over HTTP on loopback, one keep-alive connection: the
		// request path as Stripe's deliveries take it.
		b.Run(c.name+"/http", func(b *testing.B) {
			srv := httptest.NewServer(build(c.opts...))
			defer srv.Close()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := &events[(i+n/2)%n]
				req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(e.payload))
				req.Header.Set(stripewebhook.SignatureHeader, e.header)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			ns[c.name+"/http"] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	for _, path := range []string{"", "/http"} {
		off := ns["off"+path]
		for _, name := range []string{"noop", "otel-metrics", "otel-metrics+spans"} {
			if on := ns[name+path]; on > 0 && off > 0 {
				fmt.Printf("ratio observer %-24s %7.0f ns  off %7.0f ns  cost %+5.1f%%\n", name+path, on, off, 100*(on/off-1))
			}
		}
	}
}

type noop struct{}

func (noop) Start(ctx context.Context, _ stripewebhook.Op) context.Context { return ctx }
func (noop) End(context.Context, *stripewebhook.Report)                    {}

// A Worker's runs are counted by outcome, dead letters included, with the
// queue's lag.
func TestRunMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	obs, err := otelwebhook.New(otelwebhook.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelwebhook.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	e := &stripewebhook.Event{ID: "evt_1", Type: "invoice.paid"}
	for _, outcome := range []stripewebhook.Outcome{stripewebhook.OutcomeFailed, stripewebhook.OutcomeDeadLettered, stripewebhook.OutcomeHandled} {
		ctx := obs.Start(context.Background(), stripewebhook.OpRun)
		obs.End(ctx, &stripewebhook.Report{Op: stripewebhook.OpRun, Event: e, Outcome: outcome, Attempt: 1, QueueLag: 2 * time.Second})
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var runs metricdata.Sum[int64]
	var lag metricdata.Histogram[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case otelwebhook.MetricRuns:
				runs = m.Data.(metricdata.Sum[int64])
			case otelwebhook.MetricQueueLag:
				lag = m.Data.(metricdata.Histogram[float64])
			}
		}
	}
	got := map[string]int64{}
	for _, p := range runs.DataPoints {
		got[attrs(p.Attributes.ToSlice())["stripewebhook.outcome"]] = p.Value
	}
	if got["dead_lettered"] != 1 || got["failed"] != 1 || got["handled"] != 1 {
		t.Fatalf("runs by outcome %v", got)
	}
	var n uint64
	for _, p := range lag.DataPoints {
		n += p.Count
	}
	if n != 3 {
		t.Fatalf("%d queue lags recorded", n)
	}
}
