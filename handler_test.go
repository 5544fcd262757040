package stripewebhook_test

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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const testSecret = "whsec_handler_test_secret"

// harness is a handler whose invoice.paid callback counts its runs and can
// be told to fail, panic or block.
type harness struct {
	h     *stripewebhook.Handler
	runs  atomic.Int32
	fail  atomic.Int32 // fail the next n runs
	panic atomic.Bool
	block chan struct{}
	logs  *bytes.Buffer
	hooks []error
	mu    sync.Mutex
	last  *stripewebhook.Event
}

func newHarness(t *testing.T, opts ...stripewebhook.HandlerOption) *harness {
	t.Helper()
	hs := &harness{logs: new(bytes.Buffer)}
	d := stripewebhook.NewDispatcher()
	require.NoError(t, stripewebhook.On(d, "invoice.paid", func(ctx context.Context, e *stripewebhook.Event, inv *stripe.Invoice) error {
		hs.runs.Add(1)
		hs.mu.Lock()
		hs.last = e.Clone()
		hs.mu.Unlock()
		if hs.block != nil {
			<-hs.block
		}
		if hs.panic.Load() {
			panic("callback bug")
		}
		if hs.fail.Load() > 0 {
			hs.fail.Add(-1)
			return errors.New("database down: postgres://app:hunter2@db")
		}
		if inv.ID == "" {
			return errors.New("invoice not decoded")
		}
		return nil
	}))
	var logMu sync.Mutex
	opts = append([]stripewebhook.HandlerOption{
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&logMu, hs.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		stripewebhook.WithErrorHook(func(_ *http.Request, _ *stripewebhook.Event, err error) {
			hs.mu.Lock()
			hs.hooks = append(hs.hooks, err)
			hs.mu.Unlock()
		}),
	}, opts...)
	h, err := stripewebhook.NewHandler(d, []stripewebhook.Secret{stripewebhook.NewSecret("current", testSecret)}, opts...)
	require.NoError(t, err)
	hs.h = h
	return hs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (hs *harness) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

func invoicePaid(t testing.TB) []byte { return webhooktest.Fixture(t, "invoice.paid") }

func signedAt(t testing.TB, payload []byte, at time.Time) *http.Request {
	return webhooktest.NewRequestAt(t, "/webhook", payload, at, testSecret)
}

func TestHandlerDelivers(t *testing.T) {
	hs := newHarness(t)
	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", invoicePaid(t), testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok\n", rec.Body.String())
	assert.Equal(t, int32(1), hs.runs.Load())
	assert.Equal(t, "current", hs.last.Secret)
	assert.Equal(t, stripe.EventType("invoice.paid"), hs.last.Type)
	assert.Contains(t, hs.logs.String(), "event_id="+hs.last.ID)
	assert.Contains(t, hs.logs.String(), "outcome=handled")
}

// TestStatusPolicy goes through every row of the status policy and checks
// that the callback ran only where it should.
func TestStatusPolicy(t *testing.T) {
	now := time.Now()
	inv := invoicePaid(t)
	signed := func(body []byte) func(*testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return signedAt(t, body, now) }
	}
	withHeader := func(h string) func(*testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := signedAt(t, inv, now)
			if h == "" {
				r.Header.Del("Stripe-Signature")
			} else {
				r.Header.Set("Stripe-Signature", h)
			}
			return r
		}
	}
	for _, tt := range []struct {
		name   string
		opts   []stripewebhook.HandlerOption
		req    func(*testing.T) *http.Request
		status int
		body   string
		runs   int32
	}{
		{"handled", nil, signed(inv), 200, "ok", 1},
		{"unhandled type", nil, signed(webhooktest.Fixture(t, "payout.failed")), 200, "ok", 0},
		{"type newer than stripe-go", nil, signed([]byte(`{"id":"evt_new","type":"brand_new.event","data":{"object":{}}}`)), 200, "ok", 0},
		{"filtered livemode", []stripewebhook.HandlerOption{stripewebhook.WithLivemode(true)}, signed(inv), 200, "ok", 0},
		{"filtered account", []stripewebhook.HandlerOption{stripewebhook.WithAccounts("acct_1")}, signed(inv), 200, "ok", 0},
		{"platform account allowed", []stripewebhook.HandlerOption{stripewebhook.WithAccounts("")}, signed(inv), 200, "ok", 1},
		{"GET", nil, func(t *testing.T) *http.Request { return httptest.NewRequest("GET", "/webhook", nil) }, 405, "method not allowed", 0},
		{"over the cap", []stripewebhook.HandlerOption{stripewebhook.WithMaxBodyBytes(1024)}, signed(inv), 413, "body too large", 0},
		{"over the cap, chunked", []stripewebhook.HandlerOption{stripewebhook.WithMaxBodyBytes(1024)}, func(t *testing.T) *http.Request {
			r := signedAt(t, inv, now)
			r.ContentLength = -1
			r.Body = io.NopCloser(bytes.NewReader(inv))
			return r
		}, 413, "body too large", 0},
		{"exactly the cap", []stripewebhook.HandlerOption{stripewebhook.WithMaxBodyBytes(int64(len(inv)))}, signed(inv), 200, "ok", 1},
		{"no header", nil, withHeader(""), 400, "missing Stripe-Signature header", 0},
		{"malformed header", nil, withHeader("v1,t=1"), 400, "malformed Stripe-Signature header", 0},
		{"forged signature", nil, withHeader("t=" + itoa(now.Unix()) + ",v1=" + strings.Repeat("ab", 32)), 400, "no valid signature", 0},
		{"other secret", nil, func(t *testing.T) *http.Request { return webhooktest.NewRequest(t, "/webhook", inv, "whsec_other") }, 400, "no valid signature", 0},
		{"body changed", nil, func(t *testing.T) *http.Request {
			r := signedAt(t, inv, now)
			changed := bytes.Replace(inv, []byte(`"amount_paid": 0`), []byte(`"amount_paid": 2000`), 1)
			require.NotEqual(t, inv, changed)
			r.Body = io.NopCloser(bytes.NewReader(changed))
			return r
		}, 400, "no valid signature", 0},
		{"replayed", nil, func(t *testing.T) *http.Request { return signedAt(t, inv, now.Add(-10*time.Minute)) }, 400, "signature timestamp outside tolerance", 0},
		{"from the future", nil, func(t *testing.T) *http.Request { return signedAt(t, inv, now.Add(10*time.Minute)) }, 400, "signature timestamp outside tolerance", 0},
		{"not JSON", nil, signed([]byte("payload=1")), 400, "invalid event payload", 0},
		{"no id", nil, signed([]byte(`{"type":"invoice.paid","data":{"object":{}}}`)), 400, "invalid event payload", 0},
		{"no type", nil, signed([]byte(`{"id":"evt_1","data":{"object":{}}}`)), 400, "invalid event payload", 0},
		{"API version of another train, strict", []stripewebhook.HandlerOption{stripewebhook.WithStrictAPIVersion()},
			signed(bytes.Replace(inv, []byte(stripe.APIVersion), []byte("2024-06-20"), 1)), 500, "event not processed, retry later", 0},
		{"API version of the same train, strict", []stripewebhook.HandlerOption{stripewebhook.WithStrictAPIVersion()},
			signed(bytes.Replace(inv, []byte(stripe.APIVersion), []byte("2025-09-30.basil"), 1)), 200, "ok", 1},
		{"store down", []stripewebhook.HandlerOption{stripewebhook.WithDedup(brokenStore{})}, signed(inv), 503, "dedup store unavailable, retry later", 0},
		{"store down, fail open", []stripewebhook.HandlerOption{stripewebhook.WithDedup(brokenStore{}), stripewebhook.WithDedupFailOpen()}, signed(inv), 200, "ok", 1},
		{"no dedup", []stripewebhook.HandlerOption{stripewebhook.WithDedup(nil)}, signed(inv), 200, "ok", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, tt.opts...)
			rec := hs.serve(tt.req(t))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.body+"\n", rec.Body.String())
			assert.Equal(t, tt.runs, hs.runs.Load(), "callback runs")
			if tt.status == 405 {
				assert.Equal(t, "POST", rec.Header().Get("Allow"))
			}
			if tt.status >= 400 && tt.status != 405 {
				require.Len(t, hs.hooks, 1, "error hook")
				assert.Equal(t, tt.status, stripewebhook.StatusCode(hs.hooks[0]))
			}
			for _, leak := range []string{testSecret, "hunter2", "goroutine"} {
				assert.NotContains(t, rec.Body.String(), leak)
				assert.NotContains(t, hs.logs.String(), testSecret)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type brokenStore struct{}

var errStoreDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

func (brokenStore) Claim(context.Context, string, time.Duration) (stripewebhook.Claim, error) {
	return stripewebhook.Claim{}, errStoreDown
}
func (brokenStore) Complete(context.Context, string, string, time.Duration) error {
	return errStoreDown
}
func (brokenStore) Release(context.Context, string, string) error               { return errStoreDown }
func (brokenStore) Extend(context.Context, string, string, time.Duration) error { return errStoreDown }

func TestCallbackErrorReleasesClaim(t *testing.T) {
	hs := newHarness(t)
	hs.fail.Store(1)
	inv := invoicePaid(t)
	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "hunter2", "a callback's error never reaches the response")
	assert.Equal(t, int32(1), hs.runs.Load())

	// Stripe's retry runs the callback again, and succeeds.
	rec = hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(2), hs.runs.Load())

	// A duplicate after success is acknowledged without running.
	rec = hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(2), hs.runs.Load())
	assert.Contains(t, hs.logs.String(), "outcome=duplicate")
}

func TestCallbackPanicReleasesClaim(t *testing.T) {
	hs := newHarness(t)
	hs.panic.Store(true)
	inv := invoicePaid(t)
	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.NotContains(t, rec.Body.String(), "callback bug")
	var pe *stripewebhook.PanicError
	require.Len(t, hs.hooks, 1)
	require.ErrorAs(t, hs.hooks[0], &pe)

	hs.panic.Store(false)
	rec = hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(2), hs.runs.Load())
}

func TestInProgressElsewhere(t *testing.T) {
	hs := newHarness(t)
	hs.block = make(chan struct{})
	inv := invoicePaid(t)
	first := make(chan int)
	go func() { first <- hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret)).Code }()
	require.Eventually(t, func() bool { return hs.runs.Load() == 1 }, 5*time.Second, time.Millisecond)

	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusConflict, rec.Code)
	assert.Equal(t, int32(1), hs.runs.Load())

	close(hs.block)
	assert.Equal(t, http.StatusOK, <-first)
	rec = hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(1), hs.runs.Load())
}

func TestSameEventHundredTimesAtOnce(t *testing.T) {
	hs := newHarness(t)
	inv := invoicePaid(t)
	hs.block = make(chan struct{})
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	start := make(chan struct{})
	for range 100 {
		req := webhooktest.NewRequest(t, "/webhook", inv, testSecret)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes <- hs.serve(req).Code
		}()
	}
	close(start)
	// Hold the one run until every other delivery has been answered.
	for range 99 {
		assert.Equal(t, http.StatusConflict, <-codes)
	}
	close(hs.block)
	wg.Wait()
	assert.Equal(t, http.StatusOK, <-codes)
	assert.Equal(t, int32(1), hs.runs.Load())
}

func TestRollingSecrets(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	var secret string
	d.HandleFunc("*", func(_ context.Context, e *stripewebhook.Event) error { secret = e.Secret; return nil })
	h, err := stripewebhook.NewHandler(d, []stripewebhook.Secret{
		stripewebhook.NewSecret("new", "whsec_new"), stripewebhook.NewSecret("old", "whsec_old"), stripewebhook.NewSecret("connect", "whsec_connect"),
	}, stripewebhook.WithDedup(nil))
	require.NoError(t, err)
	for _, tt := range []struct {
		signers []string
		want    string
	}{
		{[]string{"whsec_old"}, "old"},
		{[]string{"whsec_old", "whsec_new"}, "new"}, // Stripe signs with both while rolling
		{[]string{"whsec_connect"}, "connect"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhooktest.NewRequestAt(t, "/webhook", invoicePaid(t), time.Now(), tt.signers...))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, tt.want, secret)
	}
}

func TestLargeInvoiceUnderDefaultCap(t *testing.T) {
	hs := newHarness(t)
	body := make([]byte, 0, 300<<10)
	body = append(body, invoicePaid(t)...)
	// Pad data.object with 200 KiB of line-item-like metadata.
	pad := `"metadata": {"note": "` + strings.Repeat("x", 200<<10) + `"},`
	body = bytes.Replace(body, []byte(`"object": "invoice",`), []byte(`"object": "invoice", `+pad), 1)
	require.Greater(t, len(body), 200<<10)
	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", body, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(1), hs.runs.Load())
}

func TestMountedOnServeMux(t *testing.T) {
	hs := newHarness(t)
	mux := http.NewServeMux()
	mux.Handle("POST /webhook", hs.h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	inv := invoicePaid(t)
	resp, err := http.Post(srv.URL+"/webhook", "application/json", bytes.NewReader(inv))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "unsigned")
	req := webhooktest.NewRequest(t, "/webhook", inv, testSecret)
	req2, _ := http.NewRequest("POST", srv.URL+"/webhook", bytes.NewReader(inv))
	req2.Header = req.Header
	resp, err = http.DefaultClient.Do(req2)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(1), hs.runs.Load())
}

func TestHandleWithoutHTTP(t *testing.T) {
	hs := newHarness(t)
	inv := invoicePaid(t)
	now := time.Now()
	err := hs.h.Handle(context.Background(), inv, fixture.Header(inv, now, testSecret))
	require.NoError(t, err)
	err = hs.h.Handle(context.Background(), inv, fixture.Header(inv, now, "whsec_wrong"))
	require.ErrorIs(t, err, stripewebhook.ErrNoValidSignature)
	assert.Equal(t, http.StatusBadRequest, stripewebhook.StatusCode(err))
	assert.Equal(t, int32(1), hs.runs.Load())
}

func TestBodyReadError(t *testing.T) {
	hs := newHarness(t)
	req := webhooktest.NewRequest(t, "/webhook", invoicePaid(t), testSecret)
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader([]byte(`{"id":`)), errReader{}))
	req.ContentLength = -1
	rec := hs.serve(req)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Equal(t, int32(0), hs.runs.Load())
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestAPIVersionMismatchLogged(t *testing.T) {
	hs := newHarness(t)
	old := bytes.Replace(invoicePaid(t), []byte(stripe.APIVersion), []byte("2024-06-20"), 1)
	rec := hs.serve(webhooktest.NewRequest(t, "/webhook", old, testSecret))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, int32(1), hs.runs.Load())
	assert.Contains(t, hs.logs.String(), "api_version=2024-06-20")
}

func TestNewHandlerConfigErrors(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil }))
	ok := stripewebhook.Secrets("whsec_x")
	_, err := stripewebhook.NewHandler(d, nil)
	require.ErrorIs(t, err, stripewebhook.ErrNoSecret)
	assert.Contains(t, err.Error(), "stripe listen")
	_, err = stripewebhook.NewHandler(d, stripewebhook.Secrets(""))
	require.ErrorIs(t, err, stripewebhook.ErrNoSecret)
	_, err = stripewebhook.NewHandler(d, ok, stripewebhook.WithTolerance(0))
	require.ErrorIs(t, err, stripewebhook.ErrInvalidTolerance)
	for _, tc := range []struct {
		name string
		opt  stripewebhook.HandlerOption
		want string
	}{
		{"max body", stripewebhook.WithMaxBodyBytes(0), "max body bytes must be positive"},
		{"read timeout", stripewebhook.WithReadTimeout(0), "read timeout must be positive"},
		{"lease", stripewebhook.WithLease(0), "lease must be positive"},
		{"retention", stripewebhook.WithRetention(0), "retention must be positive"},
		{"retention inside Stripe's retries", stripewebhook.WithRetention(24 * time.Hour), "shorter than Stripe's retry window"},
		{"short retention of zero", stripewebhook.WithShortRetention(0), "retention must be positive"},
		{"no account", stripewebhook.WithAccounts(), "would drop every event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stripewebhook.NewHandler(d, ok, tc.opt)
			require.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	for _, opt := range []stripewebhook.HandlerOption{
		stripewebhook.WithRetention(stripewebhook.StripeRetryWindow),
		stripewebhook.WithShortRetention(time.Minute),
	} {
		_, err = stripewebhook.NewHandler(d, ok, opt)
		require.NoError(t, err)
	}
	_, err = stripewebhook.NewHandler(nil, ok)
	require.Error(t, err)
	_, err = stripewebhook.NewHandler(stripewebhook.NewDispatcher(), ok)
	require.ErrorIs(t, err, stripewebhook.ErrNoCallbacks)
}

func TestCustomDedupKey(t *testing.T) {
	hs := newHarness(t, stripewebhook.WithDedupKey(func(e *stripewebhook.Event) string {
		return string(e.Type) + ":" + e.Account
	}))
	inv := invoicePaid(t)
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret)).Code)
	other := webhooktest.WithID(t, inv, "evt_other")
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", other, testSecret)).Code)
	assert.Equal(t, int32(1), hs.runs.Load(), "same key, so the second event was a duplicate")
}

func TestEmptyDedupKeyFallsBackToID(t *testing.T) {
	hs := newHarness(t, stripewebhook.WithDedupKey(func(*stripewebhook.Event) string { return "" }))
	inv := invoicePaid(t)
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret)).Code)
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", webhooktest.WithID(t, inv, "evt_other"), testSecret)).Code)
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret)).Code)
	assert.Equal(t, int32(2), hs.runs.Load(), "two distinct events ran, the duplicate did not")
}

func TestStatusCode(t *testing.T) {
	assert.Equal(t, 200, stripewebhook.StatusCode(nil))
	assert.Equal(t, 413, stripewebhook.StatusCode(&http.MaxBytesError{Limit: 1}))
	assert.Equal(t, 409, stripewebhook.StatusCode(stripewebhook.ErrInProgress))
	assert.Equal(t, 503, stripewebhook.StatusCode(&stripewebhook.StoreError{Op: "claim", Err: errStoreDown}))
	assert.Equal(t, 500, stripewebhook.StatusCode(errors.New("callback")))
	assert.Equal(t, 400, stripewebhook.StatusCode(stripewebhook.ErrInvalidPayload))
	var se *stripewebhook.StoreError
	require.ErrorAs(t, error(&stripewebhook.StoreError{Op: "claim", Err: errStoreDown}), &se)
	assert.ErrorIs(t, se, errStoreDown)
}

// newCallbackHandler is a handler whose invoice.paid callback returns what
// next returns, counting runs.
func newCallbackHandler(t *testing.T, next func() error, opts ...stripewebhook.HandlerOption) (*stripewebhook.Handler, *atomic.Int32, *bytes.Buffer) {
	t.Helper()
	var runs atomic.Int32
	logs := new(bytes.Buffer)
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error {
		runs.Add(1)
		return next()
	}))
	var mu sync.Mutex
	opts = append([]stripewebhook.HandlerOption{stripewebhook.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), opts...)
	require.NoError(t, err)
	return h, &runs, logs
}

// A callback's error is the application's failure (500, retried), whatever
// it wraps; the hook still sees what it wraps.
func TestCallbackErrorIs500WhateverItWraps(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"invalid payload", fmt.Errorf("Event.Stripe: %w", stripewebhook.ErrInvalidPayload)},
		{"in progress", stripewebhook.ErrInProgress},
		{"store unavailable", &stripewebhook.StoreError{Op: "claim", Err: errStoreDown}},
		{"no valid signature", stripewebhook.ErrNoValidSignature},
		{"timestamp", &stripewebhook.TimestampError{Tolerance: time.Minute}},
		{"max bytes", &http.MaxBytesError{Limit: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fail := true
			var hooked error
			h, runs, logs := newCallbackHandler(t, func() error {
				if fail {
					fail = false
					return tt.err
				}
				return nil
			}, stripewebhook.WithErrorHook(func(_ *http.Request, _ *stripewebhook.Event, err error) { hooked = err }))
			inv := invoicePaid(t)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", inv, testSecret))
			assert.Equal(t, http.StatusInternalServerError, rec.Code)
			assert.Equal(t, int32(1), runs.Load())
			assert.ErrorIs(t, hooked, tt.err, "the original error stays reachable")
			var cbErr *stripewebhook.CallbackError
			assert.ErrorAs(t, hooked, &cbErr)
			assert.Contains(t, logs.String(), "level=ERROR", "logged as our failure, not the sender's")
			assert.NotContains(t, logs.String(), "level=WARN")

			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", inv, testSecret))
			assert.Equal(t, http.StatusOK, rec.Code, "the claim was released: Stripe's retry runs")
			assert.Equal(t, int32(2), runs.Load())
		})
	}
}

// A body cap applied by a middleware is a 413 too, not a 400.
func TestMiddlewareBodyCapIs413(t *testing.T) {
	h, runs, _ := newCallbackHandler(t, func() error { return nil })
	rec := httptest.NewRecorder()
	http.MaxBytesHandler(h, 1024).ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", invoicePaid(t), testSecret))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, int32(0), runs.Load())
}

// ctxStore fails, as a network store does, when the context is done.
type ctxStore struct{ stripewebhook.Store }

func (s ctxStore) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	if err := ctx.Err(); err != nil {
		return stripewebhook.Claim{}, fmt.Errorf("dial tcp: %w", err)
	}
	return s.Store.Claim(ctx, key, lease)
}

// Under fail-open, a delivery Stripe gave up on is not a store outage:
// nothing runs (an event already done does not run again), nothing is
// logged as an outage.
func TestCancelledDeliveryIsNotAnOutage(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		t.Run(fmt.Sprintf("failOpen=%v", failOpen), func(t *testing.T) {
			opts := []stripewebhook.HandlerOption{stripewebhook.WithDedup(ctxStore{stripewebhook.NewMemoryStore(0)})}
			if failOpen {
				opts = append(opts, stripewebhook.WithDedupFailOpen())
			}
			h, runs, logs := newCallbackHandler(t, func() error { return nil }, opts...)
			inv := invoicePaid(t)
			header := fixture.Header(inv, time.Now(), testSecret)
			require.NoError(t, h.Handle(context.Background(), inv, header))
			require.Equal(t, int32(1), runs.Load())

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			for _, payload := range [][]byte{inv, webhooktest.WithID(t, inv, "evt_new")} {
				err := h.Handle(ctx, payload, fixture.Header(payload, time.Now(), testSecret))
				require.ErrorIs(t, err, stripewebhook.ErrAbandoned)
				require.ErrorIs(t, err, context.Canceled)
				assert.NotErrorIs(t, err, stripewebhook.ErrStoreUnavailable)
			}
			assert.Equal(t, int32(1), runs.Load(), "neither the done event nor the new one ran")
			assert.NotContains(t, logs.String(), "unavailable")
			assert.NotContains(t, logs.String(), "level=ERROR")
			assert.Contains(t, logs.String(), "outcome=abandoned")
		})
	}
}

func TestStrictAPIVersionHoldsBackOnlyWhatWouldRun(t *testing.T) {
	h, runs, _ := newCallbackHandler(t, func() error { return nil }, stripewebhook.WithStrictAPIVersion())
	old := webhooktest.Fixture(t, "invoice.paid", fixture.APIVersion("2024-06-20"))
	err := h.Handle(context.Background(), old, fixture.Header(old, time.Now(), testSecret))
	require.ErrorIs(t, err, stripewebhook.ErrAPIVersionMismatch)
	assert.Equal(t, 500, stripewebhook.StatusCode(err))
	assert.Equal(t, int32(0), runs.Load())

	unhandled := webhooktest.Fixture(t, "balance.available", fixture.APIVersion("2024-06-20"))
	require.NoError(t, h.Handle(context.Background(), unhandled, fixture.Header(unhandled, time.Now(), testSecret)),
		"no callback would run it: acknowledged, never retried for days")
}

func TestAPIVersionWarningsBounded(t *testing.T) {
	h, runs, logs := newCallbackHandler(t, func() error { return nil })
	for i := range 200 {
		p := webhooktest.Fixture(t, "invoice.paid", fixture.ID(fmt.Sprintf("evt_v%d", i)), fixture.APIVersion(fmt.Sprintf("2020-01-%02d.v%d", i%28+1, i)))
		require.NoError(t, h.Handle(context.Background(), p, fixture.Header(p, time.Now(), testSecret)))
	}
	assert.Equal(t, int32(200), runs.Load())
	n := strings.Count(logs.String(), "event API version differs")
	assert.Equal(t, 64, n, "one line per version, for a bounded number of versions")
}

func TestPanicLoggedWithStack(t *testing.T) {
	h, runs, logs := newCallbackHandler(t, func() error { panic("callback bug") })
	inv := invoicePaid(t)
	err := h.Handle(context.Background(), inv, fixture.Header(inv, time.Now(), testSecret))
	var p *stripewebhook.PanicError
	require.ErrorAs(t, err, &p)
	assert.Equal(t, int32(1), runs.Load())
	assert.Contains(t, logs.String(), "stack=")
	assert.Contains(t, logs.String(), "handler_test.go", "the stack names the callback's frame")
}

func TestCatchAllRunLoggedAsHandled(t *testing.T) {
	var buf bytes.Buffer
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	p := webhooktest.Fixture(t, "balance.available")
	require.NoError(t, h.Handle(context.Background(), p, fixture.Header(p, time.Now(), testSecret)))
	assert.Contains(t, buf.String(), `outcome=handled_catch_all`)
}

func TestConfigurationsThatDropEverythingFail(t *testing.T) {
	_, err := stripewebhook.NewHandler(stripewebhook.NewDispatcher(), stripewebhook.Secrets(testSecret))
	require.ErrorIs(t, err, stripewebhook.ErrNoCallbacks)

	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	_, err = stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithAccounts())
	require.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
	assert.Contains(t, err.Error(), "every event")
	_, err = stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithReadTimeout(0))
	require.ErrorIs(t, err, stripewebhook.ErrInvalidOption)
	_, err = stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithAccounts(""))
	require.NoError(t, err, "the platform's own events only")
}

// An Event kept after its callback returned stays what it was, while the
// handler serves other deliveries (run with -race).
func TestRetainedEventStaysValid(t *testing.T) {
	var kept []*stripewebhook.Event
	var mu sync.Mutex
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		mu.Lock()
		kept = append(kept, e)
		mu.Unlock()
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	inv := invoicePaid(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", webhooktest.WithID(t, inv, fmt.Sprintf("evt_kept_%02d", i)), testSecret))
			assert.Equal(t, 200, rec.Code)
		}()
	}
	wg.Wait()
	require.Len(t, kept, 40)
	seen := map[string]bool{}
	for _, e := range kept {
		assert.True(t, strings.HasPrefix(e.ID, "evt_kept_"), e.ID)
		assert.Contains(t, string(e.Payload), `"id": "`+e.ID+`"`)
		inv, err := stripewebhook.Decode[stripe.Invoice](e)
		require.NoError(t, err)
		assert.Equal(t, "in_1SbQkR2eZvKYlo2CiNvOiCe1", inv.ID)
		seen[e.ID] = true
	}
	assert.Len(t, seen, 40)
}

// Deliver runs an event that arrived another way through the same filters,
// dedup store and callbacks as a signed delivery: an event that arrives
// both ways runs once; a failure is released so the next try runs it.
func TestDeliverIsDeduplicatedWithWebhooks(t *testing.T) {
	hs := newHarness(t, stripewebhook.WithAccounts(""))
	inv := invoicePaid(t)
	e, err := stripewebhook.ParseEvent(inv)
	require.NoError(t, err)

	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", inv, testSecret)).Code)
	require.NoError(t, hs.h.Deliver(context.Background(), e), "a duplicate of a webhook delivery")
	assert.Equal(t, int32(1), hs.runs.Load(), "the event arrived twice and ran once")

	other, err := stripewebhook.ParseEvent(webhooktest.WithID(t, inv, "evt_bus_1"))
	require.NoError(t, err)
	hs.fail.Store(1)
	err = hs.h.Deliver(context.Background(), other)
	assert.Equal(t, 500, stripewebhook.StatusCode(err))
	require.NoError(t, hs.h.Deliver(context.Background(), other), "the failed run's claim was released")
	require.Equal(t, 200, hs.serve(webhooktest.NewRequest(t, "/webhook", webhooktest.WithID(t, inv, "evt_bus_1"), testSecret)).Code)
	assert.Equal(t, int32(3), hs.runs.Load(), "failed once, ran once, then the webhook was a duplicate")

	connected, err := stripewebhook.ParseEvent(webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_bus_2"), fixture.Account("acct_other")))
	require.NoError(t, err)
	require.NoError(t, hs.h.Deliver(context.Background(), connected))
	assert.Equal(t, int32(3), hs.runs.Load(), "filtered by WithAccounts, as a delivery would be")
}
