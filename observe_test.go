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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

type ctxKey string

// recorder is an Observer that keeps a copy of every report, and marks the
// contexts it returns so that pairing can be checked.
type recorder struct {
	mu      sync.Mutex
	reports []stripewebhook.Report
	starts  []stripewebhook.Op
}

func (r *recorder) Start(ctx context.Context, op stripewebhook.Op) context.Context {
	r.mu.Lock()
	r.starts = append(r.starts, op)
	r.mu.Unlock()
	return context.WithValue(ctx, ctxKey(op.String()), true)
}

func (r *recorder) End(ctx context.Context, rep *stripewebhook.Report) {
	if ctx.Value(ctxKey(rep.Op.String())) == nil {
		panic("End without its Start's context")
	}
	r.mu.Lock()
	r.reports = append(r.reports, *rep)
	r.mu.Unlock()
}

func (r *recorder) last(op stripewebhook.Op) stripewebhook.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reports) - 1; i >= 0; i-- {
		if r.reports[i].Op == op {
			return r.reports[i]
		}
	}
	return stripewebhook.Report{}
}

// Each row of the status policy reaches the observer with its outcome,
// reason and status; runs are observed inside deliveries, and the
// callbacks get the run's context.
func TestObserverSeesEveryOutcome(t *testing.T) {
	now := time.Now()
	inv := invoicePaid(t)
	signed := func(p []byte, at time.Time) *http.Request {
		return webhooktest.NewRequestAt(t, "/webhook", p, at, testSecret)
	}
	for _, tt := range []struct {
		name    string
		opts    []stripewebhook.HandlerOption
		fail    bool
		req     *http.Request
		status  int
		outcome stripewebhook.Outcome
		reason  stripewebhook.Reason
		run     bool
	}{
		{"handled", nil, false, signed(inv, now), 200, stripewebhook.OutcomeHandled, "", true},
		{"unhandled", nil, false, signed(webhooktest.Fixture(t, "payout.failed"), now), 200, stripewebhook.OutcomeUnhandled, "", false},
		{"filtered", []stripewebhook.HandlerOption{stripewebhook.WithLivemode(true)}, false, signed(inv, now), 200, stripewebhook.OutcomeFiltered, "", false},
		{"failed", nil, true, signed(inv, now), 500, stripewebhook.OutcomeFailed, "", true},
		{"held", []stripewebhook.HandlerOption{stripewebhook.WithStrictAPIVersion()}, false, signed(webhooktest.Fixture(t, "invoice.paid", fixture.APIVersion("2024-06-20")), now), 500, stripewebhook.OutcomeHeld, "", false},
		{"store down", []stripewebhook.HandlerOption{stripewebhook.WithDedup(brokenStore{})}, false, signed(inv, now), 503, stripewebhook.OutcomeStoreUnavailable, "", false},
		{"method", nil, false, httptest.NewRequest("GET", "/webhook", nil), 405, stripewebhook.OutcomeRejected, stripewebhook.ReasonMethod, false},
		{"too large", []stripewebhook.HandlerOption{stripewebhook.WithMaxBodyBytes(10)}, false, signed(inv, now), 413, stripewebhook.OutcomeRejected, stripewebhook.ReasonTooLarge, false},
		{"missing header", nil, false, httptest.NewRequest("POST", "/webhook", bytes.NewReader(inv)), 400, stripewebhook.OutcomeRejected, stripewebhook.ReasonMissingHeader, false},
		{"bad signature", nil, false, webhooktest.NewRequest(t, "/webhook", inv, "whsec_other"), 400, stripewebhook.OutcomeRejected, stripewebhook.ReasonBadSignature, false},
		{"stale", nil, false, signed(inv, now.Add(-time.Hour)), 400, stripewebhook.OutcomeRejected, stripewebhook.ReasonStale, false},
		{"future", nil, false, signed(inv, now.Add(time.Hour)), 400, stripewebhook.OutcomeRejected, stripewebhook.ReasonFuture, false},
		{"bad payload", nil, false, signed([]byte("not json"), now), 400, stripewebhook.OutcomeRejected, stripewebhook.ReasonBadPayload, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			d := stripewebhook.NewDispatcher()
			d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
				if ctx.Value(ctxKey("run")) == nil {
					t.Error("the callback did not get the run's context")
				}
				if tt.fail {
					return assert.AnError
				}
				return nil
			})
			h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
				append([]stripewebhook.HandlerOption{stripewebhook.WithObserver(rec), stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, tt.opts...)...)
			require.NoError(t, err)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			require.Equal(t, tt.status, w.Code)
			del := rec.last(stripewebhook.OpDelivery)
			assert.Equal(t, tt.status, del.Status)
			assert.Equal(t, tt.outcome, del.Outcome)
			assert.Equal(t, tt.reason, del.Reason)
			assert.Positive(t, del.Total)
			assert.Equal(t, tt.status != 200, del.Err != nil)
			if del.Event != nil {
				assert.Equal(t, "#1", del.Secret)
				assert.Positive(t, del.EventAge, "created is in the past")
				assert.Positive(t, del.Verify)
			}
			run := rec.last(stripewebhook.OpRun)
			assert.Equal(t, tt.run, run.Op == stripewebhook.OpRun, "a run observed")
			if tt.run {
				assert.Positive(t, del.Callbacks)
				assert.Equal(t, del.Callbacks, run.Callbacks)
				assert.Positive(t, del.Store, "claim and complete or release")
				assert.Equal(t, []stripewebhook.Op{stripewebhook.OpDelivery, stripewebhook.OpRun}, rec.starts)
			}
		})
	}
}

// A flood of rejected deliveries is logged one by one up to a burst per
// window, then summarised once.
func TestRejectionsRateLimited(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	var logs bytes.Buffer
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithClock(clock),
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	inv := invoicePaid(t)
	for range 25 {
		h.Handle(context.Background(), inv, fixture.Header(inv, now, "whsec_forged"))
	}
	assert.Equal(t, 10, strings.Count(logs.String(), "level=WARN msg=\"stripe webhook\""))
	now = now.Add(11 * time.Second)
	h.Handle(context.Background(), inv, fixture.Header(inv, now, "whsec_forged"))
	assert.Contains(t, logs.String(), "rejected deliveries not logged one by one")
	assert.Contains(t, logs.String(), "bad_signature=15")
	assert.Equal(t, 11, strings.Count(logs.String(), "level=WARN msg=\"stripe webhook\""))
}

// A bad signature's log line says what the likely cause is, and never
// shows the secret, the signature or the body.
func TestSignatureHints(t *testing.T) {
	inv := invoicePaid(t)
	compact := []byte(strings.Join(strings.Fields(string(inv)), ""))
	now := time.Now()
	for _, tt := range []struct {
		name   string
		body   []byte
		header string
		hint   string
	}{
		{"empty body", nil, fixture.Header(inv, now, testSecret), "the body is empty"},
		{"re-encoded", compact, fixture.Header(inv, now, testSecret), "re-encoded"},
		{"rolled, none matching", inv, fixture.Header(inv, now, "whsec_a", "whsec_b"), "2 v1 signatures"},
		{"another endpoint's secret", inv, fixture.Header(inv, now.Add(-90*time.Second), "whsec_other"), "matches no configured secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			d := stripewebhook.NewDispatcher()
			d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { return nil })
			h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			err = h.Handle(context.Background(), tt.body, tt.header)
			require.ErrorIs(t, err, stripewebhook.ErrNoValidSignature)
			assert.Contains(t, logs.String(), tt.hint)
			assert.Contains(t, logs.String(), "signature_age=")
			_, sig, _ := strings.Cut(tt.header, "v1=")
			assert.NotContains(t, logs.String(), sig[:16])
			assert.NotContains(t, logs.String(), testSecret)
			assert.NotContains(t, logs.String(), "amount_paid")
		})
	}
}

// Deliveries the queue cannot take (503) are logged at Warn, rate-limited
// apart from the rejections: an outage of the queue shows at the default
// level without flooding the log.
func TestQueueRefusalsLoggedAtWarn(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	var logs bytes.Buffer
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	q := &recordingQueue{err: errors.New("amqpqueue: publish: connection refused")}
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithClock(clock), stripewebhook.WithQueue(q),
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	inv := invoicePaid(t)
	for range 25 {
		err := h.Handle(context.Background(), inv, fixture.Header(inv, now, testSecret))
		require.ErrorIs(t, err, stripewebhook.ErrQueueUnavailable)
	}
	h.Handle(context.Background(), inv, fixture.Header(inv, now, "whsec_forged")) // a rejection: its own budget
	assert.Equal(t, 11, strings.Count(logs.String(), "level=WARN msg=\"stripe webhook\""))
	assert.Equal(t, 10, strings.Count(logs.String(), "outcome=queue_unavailable"))
	assert.Contains(t, logs.String(), "connection refused")
	now = now.Add(11 * time.Second)
	h.Handle(context.Background(), inv, fixture.Header(inv, now, testSecret))
	assert.Contains(t, logs.String(), "refused (503) deliveries not logged one by one")
	assert.Contains(t, logs.String(), "queue_unavailable=15")
}
