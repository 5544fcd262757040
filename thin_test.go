package stripewebhook_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const meterError = "v1.billing.meter.error_report_triggered"

// thinHarness is a handler whose meter-error callback fetches the full
// event and the meter from a fake Stripe API, counts its runs, and can be
// told to fail or block.
type thinHarness struct {
	h     *stripewebhook.Handler
	api   *webhooktest.StripeAPI
	runs  atomic.Int32
	fail  atomic.Bool
	block chan struct{}
	mu    sync.Mutex
	seen  []*stripewebhook.Event
	hooks []error
}

func newThinHarness(t *testing.T, opts ...stripewebhook.HandlerOption) *thinHarness {
	t.Helper()
	hs := &thinHarness{api: webhooktest.NewStripeAPI(t)}
	d := stripewebhook.NewDispatcher(stripewebhook.WithClient(hs.api.Client()))
	require.NoError(t, stripewebhook.OnThin(d, meterError, func(ctx context.Context, e *stripewebhook.Event, full *stripe.V1BillingMeterErrorReportTriggeredEvent) error {
		hs.runs.Add(1)
		hs.mu.Lock()
		hs.seen = append(hs.seen, e)
		hs.mu.Unlock()
		if hs.block != nil {
			<-hs.block
		}
		if hs.fail.Load() {
			return errors.New("meter sync failed")
		}
		meter, err := stripewebhook.FetchRelated[stripe.BillingMeter](ctx, e)
		if err != nil {
			return err
		}
		if full.Data.Reason == nil || meter.EventName == "" {
			return errors.New("fetched nothing")
		}
		return nil
	}))
	opts = append([]stripewebhook.HandlerOption{
		stripewebhook.WithLogger(slog.New(slog.DiscardHandler)),
		stripewebhook.WithErrorHook(func(_ *http.Request, _ *stripewebhook.Event, err error) {
			hs.mu.Lock()
			hs.hooks = append(hs.hooks, err)
			hs.mu.Unlock()
		}),
	}, opts...)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), opts...)
	require.NoError(t, err)
	hs.h = h
	return hs
}

func (hs *thinHarness) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// A thin event signed by Stripe's own SDK is verified, parsed as thin,
// routed, and its callback fetches the full event and the related object.
func TestThinEventSignedByStripeSDK(t *testing.T) {
	hs := newThinHarness(t)
	payload := webhooktest.Fixture(t, meterError)
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: testSecret, Timestamp: time.Now()})
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(signed.Payload))
	req.Header.Set("Stripe-Signature", signed.Header)
	rec := hs.serve(req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, int32(1), hs.runs.Load())
	e := hs.seen[0]
	assert.Equal(t, stripewebhook.Thin, e.Kind)
	assert.Equal(t, "evt_test_65R9Ijk8cMjVEhdK1tV16R9IjkuqSQKcPQeUW7Wg4ioUbU", e.ID)
	assert.Equal(t, "billing.meter", e.Related.Type)
	assert.Equal(t, "req_v2pIv3T5bB4ZkH3Vw", e.Request.ID)
	assert.Equal(t, int64(1764000000), e.Created)
	assert.Empty(t, e.APIVersion)
	assert.Len(t, hs.api.Requests(), 2, "the full event and the meter")
}

// Every row of the status policy, for thin events, with the callback's run
// count.
func TestThinStatusPolicy(t *testing.T) {
	now := time.Now()
	thin := webhooktest.Fixture(t, meterError)
	signed := func(body []byte) func(*testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			return webhooktest.NewRequestAt(t, "/webhook", body, now, testSecret)
		}
	}
	withHeader := func(h string) func(*testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := webhooktest.NewRequestAt(t, "/webhook", thin, now, testSecret)
			r.Header.Set("Stripe-Signature", h)
			return r
		}
	}
	opts := func(o ...stripewebhook.HandlerOption) []stripewebhook.HandlerOption { return o }
	for _, tt := range []struct {
		name   string
		opts   []stripewebhook.HandlerOption
		setup  func(*thinHarness)
		req    func(*testing.T) *http.Request
		status int
		runs   int32
	}{
		{"handled", nil, nil, signed(thin), 200, 1},
		{"unhandled thin type", nil, nil, signed(webhooktest.Fixture(t, "v2.core.event_destination.ping")), 200, 0},
		{"thin type newer than stripe-go", nil, nil, signed(webhooktest.Fixture(t, meterError, fixture.Type("v2.brand_new.event"))), 200, 0},
		{"filtered livemode", opts(stripewebhook.WithLivemode(true)), nil, signed(thin), 200, 0},
		{"filtered context", opts(stripewebhook.WithAccounts("")), nil, signed(webhooktest.Fixture(t, meterError, fixture.Account("acct_1"))), 200, 0},
		{"connected account allowed", opts(stripewebhook.WithAccounts("acct_1")), func(hs *thinHarness) {
			hs.api.AddThin(t, webhooktest.Fixture(t, meterError, fixture.Account("acct_1")))
		}, signed(webhooktest.Fixture(t, meterError, fixture.Account("acct_1"))), 200, 1},
		{"GET", nil, nil, func(t *testing.T) *http.Request { return httptest.NewRequest("GET", "/webhook", nil) }, 405, 0},
		{"over the cap", opts(stripewebhook.WithMaxBodyBytes(100)), nil, signed(thin), 413, 0},
		{"no header", nil, nil, withHeader(""), 400, 0},
		{"malformed header", nil, nil, withHeader("v1,t=1"), 400, 0},
		{"forged signature", nil, nil, withHeader("t=" + itoa(now.Unix()) + ",v1=" + strings.Repeat("ab", 32)), 400, 0},
		{"other secret", nil, nil, func(t *testing.T) *http.Request { return webhooktest.NewRequest(t, "/webhook", thin, "whsec_other") }, 400, 0},
		{"replayed", nil, nil, func(t *testing.T) *http.Request {
			return webhooktest.NewRequestAt(t, "/webhook", thin, now.Add(-10*time.Minute), testSecret)
		}, 400, 0},
		{"from the future", nil, nil, func(t *testing.T) *http.Request {
			return webhooktest.NewRequestAt(t, "/webhook", thin, now.Add(10*time.Minute), testSecret)
		}, 400, 0},
		{"created not a time", nil, nil, signed(bytes.Replace(thin, []byte(`"2025-11-24T16:00:00.134Z"`), []byte(`1764000000`), 1)), 400, 0},
		{"no type", nil, nil, signed([]byte(`{"id":"evt_1","object":"v2.core.event","created":"2025-11-24T16:00:00Z"}`)), 400, 0},
		{"strict API version: thin events are unversioned", opts(stripewebhook.WithStrictAPIVersion()), nil, signed(thin), 200, 1},
		{"callback failed", nil, func(hs *thinHarness) { hs.fail.Store(true) }, signed(thin), 500, 1},
		{"fetch failed", nil, nil, signed(webhooktest.Fixture(t, meterError, fixture.ID("evt_unknown_to_the_api"))), 500, 0},
		{"store down", opts(stripewebhook.WithDedup(brokenStore{})), nil, signed(thin), 503, 0},
		{"store down, fail open", opts(stripewebhook.WithDedup(brokenStore{}), stripewebhook.WithDedupFailOpen()), nil, signed(thin), 200, 1},
		{"no dedup", opts(stripewebhook.WithDedup(nil)), nil, signed(thin), 200, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newThinHarness(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(hs)
			}
			rec := hs.serve(tt.req(t))
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Equal(t, tt.runs, hs.runs.Load(), "callback runs")
			if tt.status >= 400 && tt.status != 405 {
				require.Len(t, hs.hooks, 1, "error hook")
				assert.Equal(t, tt.status, stripewebhook.StatusCode(hs.hooks[0]))
			}
			assert.NotContains(t, rec.Body.String(), testSecret)
		})
	}
}

// A connected account's thin event: context is the account, and both
// fetches carry it as Stripe-Context; each is made once however many
// callbacks ask.
func TestThinFetchesOncePerEventWithStripeContext(t *testing.T) {
	api := webhooktest.NewStripeAPI(t)
	payload := webhooktest.Fixture(t, meterError, fixture.Account("acct_1Connected"), fixture.ID("evt_test_connected"))
	api.AddThin(t, payload)
	d := stripewebhook.NewDispatcher(stripewebhook.WithClient(api.Client()))
	var meters []*stripe.BillingMeter
	for range 3 {
		require.NoError(t, stripewebhook.OnThin(d, meterError, func(ctx context.Context, e *stripewebhook.Event, full *stripe.V1BillingMeterErrorReportTriggeredEvent) error {
			m, err := stripewebhook.FetchRelated[stripe.BillingMeter](ctx, e)
			meters = append(meters, m)
			return err
		}))
	}
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), testSecret)))
	require.Len(t, meters, 3)
	assert.Same(t, meters[0], meters[2], "fetched once, shared")
	assert.Equal(t, "api_calls", meters[0].EventName)
	reqs := api.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/v2/core/events/evt_test_connected", reqs[0].Path)
	assert.Equal(t, "/v1/billing/meters/mtr_test_61R9IeBCKO3cy7mgH41IeBCKOTwRUGFY", reqs[1].Path)
	for _, r := range reqs {
		assert.Equal(t, "acct_1Connected", r.StripeContext)
	}
}

func TestThinRegistrationChecks(t *testing.T) {
	nop := func(context.Context, *stripewebhook.Event, *stripe.V1BillingMeterErrorReportTriggeredEvent) error {
		return nil
	}
	d := stripewebhook.NewDispatcher()
	require.NoError(t, stripewebhook.OnThin(d, meterError, nop))
	require.ErrorIs(t, stripewebhook.OnThin(d, "v1.billing.meter.no_meter_found", nop), stripewebhook.ErrObjectMismatch, "its full event is another type")
	require.ErrorIs(t, stripewebhook.OnThin(d, "invoice.paid", nop), stripewebhook.ErrObjectMismatch, "a snapshot type")
	require.ErrorIs(t, stripewebhook.OnThin(d, "*", nop), stripewebhook.ErrObjectMismatch)
	require.ErrorIs(t, stripewebhook.On(d, meterError, func(context.Context, *stripewebhook.Event, *stripe.BillingMeter) error { return nil }),
		stripewebhook.ErrObjectMismatch, "a thin event has no data.object to decode")
	require.ErrorIs(t, d.HandleFunc("v1.billing.meter.eror_report_triggered", func(context.Context, *stripewebhook.Event) error { return nil }),
		stripewebhook.ErrUnknownEventType, "thin types are checked for typos too")
	d2 := stripewebhook.NewDispatcher(stripewebhook.AllowTypes("v2.brand_new.event"))
	require.NoError(t, stripewebhook.OnThin(d2, "v2.brand_new.event", func(context.Context, *stripewebhook.Event, *stripe.V2RawEvent) error { return nil }))
	assert.Contains(t, d2.EnabledEvents(), "v2.brand_new.event")
}

func TestFetchErrors(t *testing.T) {
	ctx := context.Background()
	snapshot, err := stripewebhook.ParseEvent(invoicePaid(t))
	require.NoError(t, err)
	_, err = stripewebhook.FetchEvent[stripe.V2RawEvent](ctx, snapshot)
	require.ErrorIs(t, err, stripewebhook.ErrNotThin)

	thin, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "v1.billing.meter.no_meter_found"))
	require.NoError(t, err)
	_, err = stripewebhook.FetchEvent[stripe.V1BillingMeterNoMeterFoundEvent](ctx, thin)
	require.ErrorIs(t, err, stripewebhook.ErrNoClient, "an event parsed by hand has no client")

	api := webhooktest.NewStripeAPI(t)
	d := stripewebhook.NewDispatcher(stripewebhook.WithClient(api.Client()))
	var got []error
	d.HandleFunc("v1.billing.meter.no_meter_found", func(ctx context.Context, e *stripewebhook.Event) error {
		_, err := stripewebhook.FetchEvent[stripe.V1BillingMeterErrorReportTriggeredEvent](ctx, e)
		got = append(got, err)
		full, err := stripewebhook.FetchEvent[stripe.V1BillingMeterNoMeterFoundEvent](ctx, e)
		got = append(got, err)
		if full != nil && full.Data.Reason.ErrorCount != 1 {
			t.Errorf("full event: %+v", full.Data)
		}
		_, err = stripewebhook.FetchRelated[stripe.BillingMeter](ctx, e)
		got = append(got, err)
		_, err = stripewebhook.Decode[stripe.BillingMeter](e)
		got = append(got, err)
		return nil
	})
	require.NoError(t, d.Dispatch(ctx, thin))
	require.Len(t, got, 4)
	assert.ErrorIs(t, got[0], stripewebhook.ErrObjectMismatch)
	assert.NoError(t, got[1], "the fetched event is cached whatever T was asked first")
	assert.ErrorIs(t, got[2], stripewebhook.ErrNoRelatedObject)
	assert.ErrorIs(t, got[3], stripewebhook.ErrNoObject)
	assert.Len(t, api.Requests(), 1)
}

// The dedup rows for thin events: a duplicate is acknowledged without a
// run, the same event in progress elsewhere is a 409, and a failed run's
// retry runs it again.
func TestThinDedup(t *testing.T) {
	thin := webhooktest.Fixture(t, meterError)
	deliver := func(hs *thinHarness) int {
		return hs.serve(webhooktest.NewRequest(t, "/webhook", thin, testSecret)).Code
	}
	t.Run("duplicate", func(t *testing.T) {
		hs := newThinHarness(t)
		assert.Equal(t, 200, deliver(hs))
		assert.Equal(t, 200, deliver(hs))
		assert.Equal(t, int32(1), hs.runs.Load())
	})
	t.Run("in progress", func(t *testing.T) {
		hs := newThinHarness(t)
		hs.block = make(chan struct{})
		first := make(chan int)
		go func() { first <- deliver(hs) }()
		require.Eventually(t, func() bool { return hs.runs.Load() == 1 }, 5*time.Second, time.Millisecond)
		assert.Equal(t, 409, deliver(hs))
		close(hs.block)
		assert.Equal(t, 200, <-first)
		assert.Equal(t, 200, deliver(hs))
		assert.Equal(t, int32(1), hs.runs.Load())
	})
	t.Run("retry after a failure", func(t *testing.T) {
		hs := newThinHarness(t)
		hs.fail.Store(true)
		assert.Equal(t, 500, deliver(hs))
		hs.fail.Store(false)
		assert.Equal(t, 200, deliver(hs))
		assert.Equal(t, 200, deliver(hs))
		assert.Equal(t, int32(2), hs.runs.Load(), "the failed run and its retry, not the duplicate")
	})
}

// One handler for a webhook endpoint (snapshots) and an event destination
// (thin events), each with its own secret: both verified and routed, the
// event naming the secret that matched.
func TestOneHandlerForBothKinds(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	got := map[stripewebhook.EventKind]string{}
	d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error { got[e.Kind] = e.Secret; return nil })
	h, err := stripewebhook.NewHandler(d, []stripewebhook.Secret{
		stripewebhook.NewSecret("webhook endpoint", "whsec_snapshots"),
		stripewebhook.NewSecret("event destination", "whsec_thin"),
	}, stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	snap, thin := invoicePaid(t), webhooktest.Fixture(t, meterError)
	require.NoError(t, h.Handle(context.Background(), snap, fixture.Header(snap, time.Now(), "whsec_snapshots")))
	require.NoError(t, h.Handle(context.Background(), thin, fixture.Header(thin, time.Now(), "whsec_thin")))
	assert.Equal(t, map[stripewebhook.EventKind]string{stripewebhook.Snapshot: "webhook endpoint", stripewebhook.Thin: "event destination"}, got)
}
