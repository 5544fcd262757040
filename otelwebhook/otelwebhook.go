// Package otelwebhook is a stripewebhook.Observer on OpenTelemetry: a span
// per delivery and per run of an event's callbacks, and metrics of every
// delivery, for an on-call engineer's first questions about Stripe's
// webhooks: since when, which types, which status, why.
//
//	obs, err := otelwebhook.New() // the global providers, or WithTracerProvider / WithMeterProvider
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithObserver(obs))
//
// Metrics (Prometheus names after the exporter's translation in brackets):
//
//	stripewebhook.deliveries          counter   [stripewebhook_deliveries_total]
//	stripewebhook.delivery.duration   histogram, s [stripewebhook_delivery_duration_seconds]
//	stripewebhook.event.age           histogram, s [stripewebhook_event_age_seconds]
//	stripewebhook.store.duration      histogram, s [stripewebhook_store_duration_seconds]
//	stripewebhook.runs                counter   [stripewebhook_runs_total]          a Worker's runs (asynchronous mode)
//	stripewebhook.queue.lag           histogram, s [stripewebhook_queue_lag_seconds] from the queue's accept to the run
//
// A Worker's runs count by outcome (handled, failed, dead_lettered, …), so
// that dead letters can be alerted on.
//
// The callbacks' time is on the run's span.
//
// Their attributes have bounded values: http.response.status_code,
// stripewebhook.outcome, stripewebhook.reason (rejections),
// stripe.event.type (stripe-go's types; "other" for any other, "none" before
// decoding) and stripe.event.kind. Spans carry the event id too, never a
// secret, a signature or an error's text (error.type names its Go type).
package otelwebhook

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stripewebhook/stripewebhook"
)

const scope = "github.com/stripewebhook/stripewebhook/otelwebhook"

// Metric names.
const (
	MetricDeliveries       = "stripewebhook.deliveries"
	MetricDeliveryDuration = "stripewebhook.delivery.duration"
	MetricEventAge         = "stripewebhook.event.age"
	MetricStoreDuration    = "stripewebhook.store.duration"
	MetricRuns             = "stripewebhook.runs"
	MetricQueueLag         = "stripewebhook.queue.lag"
)

// Attribute keys.
const (
	AttrStatus    = attribute.Key("http.response.status_code")
	AttrOutcome   = attribute.Key("stripewebhook.outcome")
	AttrReason    = attribute.Key("stripewebhook.reason")
	AttrEventType = attribute.Key("stripe.event.type")
	AttrEventKind = attribute.Key("stripe.event.kind")
	AttrEventID   = attribute.Key("stripe.event.id")      // spans only
	AttrSecret    = attribute.Key("stripewebhook.secret") // spans only: the secret's name
	AttrErrorType = attribute.Key("error.type")           // spans only
)

// Observer records spans and metrics. It is safe for concurrent use.
type Observer struct {
	tracer     trace.Tracer
	deliveries metric.Int64Counter
	duration   metric.Float64Histogram
	age        metric.Float64Histogram
	store      metric.Float64Histogram
	runs       metric.Int64Counter
	lag        metric.Float64Histogram

	sets sync.Map // labels → *measure: attribute sets built once
}

// measure holds the options of one attribute set, built once so that
// recording a delivery allocates nothing for them.
type measure struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// Span start options, built once.
var (
	startDelivery = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	startRun      = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
)

var _ stripewebhook.Observer = (*Observer)(nil)

// Option configures an Observer.
type Option func(*config)

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider replaces the global tracer provider.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider replaces the global meter provider.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// New returns an Observer on the given (or global) providers.
func New(opts ...Option) (*Observer, error) {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(scope)
	o := &Observer{tracer: c.tp.Tracer(scope)}
	var err error
	seconds := func(name, desc string) metric.Float64Histogram {
		var h metric.Float64Histogram
		if err == nil {
			h, err = m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
				metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
		}
		return h
	}
	o.deliveries, err = m.Int64Counter(MetricDeliveries, metric.WithUnit("{delivery}"),
		metric.WithDescription("Stripe webhook deliveries, by status, outcome and event type"))
	o.duration = seconds(MetricDeliveryDuration, "Time from a delivery's arrival to its answer")
	o.store = seconds(MetricStoreDuration, "Time spent in the dedup store per delivery")
	o.lag = seconds(MetricQueueLag, "Time from the queue's accept to a worker's run")
	if err == nil {
		o.runs, err = m.Int64Counter(MetricRuns, metric.WithUnit("{run}"),
			metric.WithDescription("A Worker's runs of events' callbacks, by outcome and event type"))
	}
	if err == nil {
		o.age, err = m.Float64Histogram(MetricEventAge, metric.WithUnit("s"),
			metric.WithDescription("Time from the event's creation to the end of its delivery: Stripe's delay and retries"),
			metric.WithExplicitBucketBoundaries(1, 5, 15, 60, 300, 900, 3600, 4*3600, 24*3600, 3*24*3600))
	}
	if err != nil {
		return nil, fmt.Errorf("otelwebhook: %w", err)
	}
	return o, nil
}

// Start starts the delivery's or the run's span.
func (o *Observer) Start(ctx context.Context, op stripewebhook.Op) context.Context {
	if op == stripewebhook.OpRun {
		ctx, _ = o.tracer.Start(ctx, "stripewebhook.run", startRun...)
	} else {
		ctx, _ = o.tracer.Start(ctx, "stripewebhook.delivery", startDelivery...)
	}
	return ctx
}

// labels is one delivery's metric attributes: bounded values only.
type labels struct {
	status  int
	outcome stripewebhook.Outcome
	reason  stripewebhook.Reason
	typ     string
	kind    string
}

// End ends the span and, for a delivery, records its metrics.
func (o *Observer) End(ctx context.Context, r *stripewebhook.Report) {
	l := labels{status: r.Status, outcome: r.Outcome, reason: r.Reason, typ: "none"}
	if e := r.Event; e != nil {
		l.typ, l.kind = "other", e.Kind.String()
		if stripewebhook.IsKnownType(string(e.Type)) {
			l.typ = string(e.Type)
		}
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{AttrOutcome.String(string(l.outcome)), AttrEventType.String(l.typ)}
		if r.Op == stripewebhook.OpDelivery {
			attrs = append(attrs, AttrStatus.Int(l.status))
		}
		if l.reason != "" {
			attrs = append(attrs, AttrReason.String(string(l.reason)))
		}
		if e := r.Event; e != nil {
			attrs = append(attrs, AttrEventID.String(e.ID), AttrEventKind.String(l.kind), AttrSecret.String(r.Secret))
		}
		if r.Err != nil {
			attrs = append(attrs, AttrErrorType.String(fmt.Sprintf("%T", r.Err)))
		}
		span.SetAttributes(attrs...)
		if r.Status >= 500 || (r.Op == stripewebhook.OpRun && r.Err != nil) {
			span.SetStatus(codes.Error, string(l.outcome))
		}
	}
	span.End()
	if r.Op != stripewebhook.OpDelivery {
		if r.Attempt > 0 { // a Worker's run
			m := o.measure(labels{outcome: l.outcome, typ: l.typ, kind: l.kind})
			o.runs.Add(ctx, 1, m.add...)
			o.lag.Record(ctx, r.QueueLag.Seconds(), m.record...)
		}
		return
	}
	m := o.measure(l)
	o.deliveries.Add(ctx, 1, m.add...)
	o.duration.Record(ctx, r.Total.Seconds(), m.record...)
	if r.Store > 0 {
		o.store.Record(ctx, r.Store.Seconds(), m.record...)
	}
	if r.EventAge > 0 {
		o.age.Record(ctx, r.EventAge.Seconds(), m.record...)
	}
}

// measure returns the options of l's attribute set, built once per
// distinct l (their number is bounded by the label values).
func (o *Observer) measure(l labels) *measure {
	if v, ok := o.sets.Load(l); ok {
		return v.(*measure)
	}
	kv := []attribute.KeyValue{AttrOutcome.String(string(l.outcome)), AttrEventType.String(l.typ)}
	if l.status != 0 {
		kv = append(kv, AttrStatus.Int(l.status))
	}
	if l.reason != "" {
		kv = append(kv, AttrReason.String(string(l.reason)))
	}
	if l.kind != "" {
		kv = append(kv, AttrEventKind.String(l.kind))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(kv...))
	v, _ := o.sets.LoadOrStore(l, &measure{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}})
	return v.(*measure)
}
