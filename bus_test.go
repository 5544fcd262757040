package stripewebhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

func TestParseEventBridge(t *testing.T) {
	for _, name := range []string{"invoice.paid", "v1.billing.meter.error_report_triggered"} {
		t.Run(name, func(t *testing.T) {
			inner := webhooktest.Fixture(t, name)
			at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			env, err := fixture.EventBridge(inner, fixture.Destination, fixture.AWSAccount, "eu-west-3", at)
			require.NoError(t, err)
			e, err := stripewebhook.ParseEventBridge(env)
			require.NoError(t, err)
			want, err := stripewebhook.ParseEvent(inner)
			require.NoError(t, err)
			assert.Equal(t, want.ID, e.ID)
			assert.Equal(t, want.Type, e.Type)
			assert.Equal(t, want.Kind, e.Kind)
			assert.JSONEq(t, string(inner), string(e.Payload), "Payload is the Stripe event")
			assert.Empty(t, e.Secret, "no signature verified it")
			require.NotNil(t, e.Origin)
			o := e.Origin
			assert.Equal(t, stripewebhook.EventBridge, o.Bus)
			assert.Equal(t, fixture.Destination, o.Destination)
			assert.Equal(t, "aws.partner/stripe.com/"+fixture.Destination, o.Source)
			assert.Equal(t, fixture.AWSAccount, o.Account)
			assert.Equal(t, "eu-west-3", o.Region)
			assert.True(t, at.Equal(o.Time))
			assert.Len(t, o.ID, 36, "the envelope's UUID")
			c := e.Clone()
			assert.Equal(t, *e.Origin, *c.Origin)
			assert.NotSame(t, e.Origin, c.Origin)
		})
	}
}

func TestParseEventGrid(t *testing.T) {
	inner := webhooktest.Fixture(t, "customer.created")
	env := webhooktest.EventGrid(t, inner)
	e, err := stripewebhook.ParseEventGrid(env)
	require.NoError(t, err)
	assert.Equal(t, "customer.created", string(e.Type))
	require.NotNil(t, e.Origin)
	assert.Equal(t, stripewebhook.EventGrid, e.Origin.Bus)
	assert.Equal(t, fixture.Destination, e.Origin.Destination)
	assert.Empty(t, e.Origin.Account)

	// data_base64 carries the same event.
	var m map[string]any
	require.NoError(t, json.Unmarshal(env, &m))
	delete(m, "data")
	m["data_base64"] = base64.StdEncoding.EncodeToString(inner)
	b64, _ := json.Marshal(m)
	e2, err := stripewebhook.ParseEventGrid(b64)
	require.NoError(t, err)
	assert.Equal(t, e.ID, e2.ID)
}

func TestParseBusRejects(t *testing.T) {
	inner := string(webhooktest.Fixture(t, "invoice.paid"))
	eb := func(f string) []byte {
		return []byte(fmt.Sprintf(`{"version":"0","id":"x","detail-type":"invoice.paid","source":"aws.partner/stripe.com/ed_1","account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1",%s}`, f))
	}
	for name, body := range map[string][]byte{
		"not JSON":            []byte(`{"version":`),
		"null":                []byte(`null`),
		"array":               []byte(`[]`),
		"no detail":           eb(`"resources":[]`),
		"detail not object":   eb(`"detail":"evt_1"`),
		"detail not event":    eb(`"detail":{"id":1}`),
		"detail-type differs": []byte(strings.Replace(string(eb(`"detail":`+inner)), `"detail-type":"invoice.paid"`, `"detail-type":"invoice.created"`, 1)),
		"version":             []byte(strings.Replace(string(eb(`"detail":`+inner)), `"version":"0"`, `"version":"1"`, 1)),
		"time":                []byte(strings.Replace(string(eb(`"detail":`+inner)), `2026-12-01T10:00:00Z`, `yesterday`, 1)),
		"account not string":  []byte(strings.Replace(string(eb(`"detail":`+inner)), `"123456789012"`, `123456789012`, 1)),
	} {
		t.Run("eventbridge/"+name, func(t *testing.T) {
			_, err := stripewebhook.ParseEventBridge(body)
			require.ErrorIs(t, err, stripewebhook.ErrInvalidPayload)
		})
	}
	ce := func(f string) []byte {
		return []byte(fmt.Sprintf(`{"specversion":"1.0","id":"x","source":"/providers/stripe/ed_1","type":"invoice.paid",%s}`, f))
	}
	for name, body := range map[string][]byte{
		"no data":         ce(`"subject":"x"`),
		"both data":       ce(`"data":` + inner + `,"data_base64":"e30="`),
		"bad base64":      ce(`"data_base64":"%%%"`),
		"data not object": ce(`"data":"evt_1"`),
		"specversion":     []byte(strings.Replace(string(ce(`"data":`+inner)), `"1.0"`, `"0.3"`, 1)),
		"no id":           []byte(strings.Replace(string(ce(`"data":`+inner)), `"id":"x",`, ``, 1)),
	} {
		t.Run("eventgrid/"+name, func(t *testing.T) {
			_, err := stripewebhook.ParseEventGrid(body)
			require.ErrorIs(t, err, stripewebhook.ErrInvalidPayload)
		})
	}
}

// busApp counts the runs of invoice.paid by event id and keeps the last
// event's origin.
type busApp struct {
	mu     sync.Mutex
	runs   map[string]int
	origin *stripewebhook.Origin
}

func (a *busApp) dispatcher(t *testing.T) *stripewebhook.Dispatcher {
	a.runs = map[string]int{}
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.runs[e.ID]++
		a.origin = e.Origin
		return nil
	}))
	return d
}

func (a *busApp) runsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

func TestDeliverTrustsOnlyPinnedDestinations(t *testing.T) {
	a := &busApp{}
	h, err := stripewebhook.NewHandler(a.dispatcher(t), stripewebhook.Secrets(testSecret),
		stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithAWSAccounts(fixture.AWSAccount),
		stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, h.TrustsBus())
	ctx := context.Background()
	inner := webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_bus_1"))

	// Pinned: runs, with its origin; the same event by webhook, then by
	// the bus again, runs no more.
	e, err := stripewebhook.ParseEventBridge(webhooktest.EventBridge(t, inner))
	require.NoError(t, err)
	require.NoError(t, h.Deliver(ctx, e))
	assert.Equal(t, 1, a.runsOf("evt_bus_1"))
	require.NotNil(t, a.origin)
	assert.Equal(t, fixture.Destination, a.origin.Destination)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", inner, testSecret))
	assert.Equal(t, 200, rec.Code)
	g, err := stripewebhook.ParseEventGrid(webhooktest.EventGrid(t, inner))
	require.NoError(t, err)
	require.NoError(t, h.Deliver(ctx, g))
	assert.Equal(t, 1, a.runsOf("evt_bus_1"), "one event, three ways in: once")

	// Another destination, another account, no destination: refused, and
	// nothing ran.
	other := webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_bus_2"))
	for name, env := range map[string][]byte{
		"destination": must(fixture.EventBridge(other, "ed_test_someoneelse", fixture.AWSAccount, fixture.AWSRegion, time.Now())),
		"account":     must(fixture.EventBridge(other, fixture.Destination, "210987654321", fixture.AWSRegion, time.Now())),
		"source":      []byte(strings.Replace(string(webhooktest.EventBridge(t, other)), "aws.partner/stripe.com/", "aws.partner/example.com/", 1)),
		"grid":        must(fixture.EventGrid(other, "ed_test_someoneelse", time.Now())),
	} {
		t.Run(name, func(t *testing.T) {
			parse := stripewebhook.ParseEventBridge
			if name == "grid" {
				parse = stripewebhook.ParseEventGrid
			}
			e, err := parse(env)
			require.NoError(t, err)
			err = h.Deliver(ctx, e)
			var oe *stripewebhook.OriginError
			require.ErrorAs(t, err, &oe)
			require.ErrorIs(t, err, stripewebhook.ErrUntrustedOrigin)
			assert.Equal(t, http.StatusForbidden, stripewebhook.StatusCode(err))
			assert.Equal(t, 0, a.runsOf("evt_bus_2"))
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestBusConfiguration(t *testing.T) {
	a := &busApp{}
	inner := webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_bus_cfg"))
	e, err := stripewebhook.ParseEventBridge(webhooktest.EventBridge(t, inner))
	require.NoError(t, err)

	// No pin: TrustsBus says so, and Deliver refuses every bus event.
	h, err := stripewebhook.NewHandler(a.dispatcher(t), stripewebhook.Secrets(testSecret), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.ErrorIs(t, h.TrustsBus(), stripewebhook.ErrInvalidOption)
	assert.Contains(t, h.TrustsBus().Error(), "WithDestinations")
	err = h.Deliver(context.Background(), e)
	require.ErrorIs(t, err, stripewebhook.ErrUntrustedOrigin)
	assert.Contains(t, err.Error(), "WithDestinations")
	assert.Equal(t, 0, a.runsOf("evt_bus_cfg"))

	// A bus-only handler needs no secret; a signed delivery to it is a 500
	// and runs nothing.
	h, err = stripewebhook.NewHandler(a.dispatcher(t), nil, stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, h.Deliver(context.Background(), e))
	assert.Equal(t, 1, a.runsOf("evt_bus_cfg"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_bus_signed")), testSecret))
	assert.Equal(t, 500, rec.Code)
	assert.Equal(t, 0, a.runsOf("evt_bus_signed"))

	for name, opts := range map[string][]stripewebhook.HandlerOption{
		"no secret, no pin":     nil,
		"empty pins":            {stripewebhook.WithDestinations()},
		"not a destination":     {stripewebhook.WithDestinations("we_123")},
		"not an account":        {stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithAWSAccounts("1234")},
		"accounts without pins": {stripewebhook.WithAWSAccounts(fixture.AWSAccount)},
		"empty accounts":        {stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithAWSAccounts()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := stripewebhook.NewHandler(a.dispatcher(t), nil, opts...)
			require.Error(t, err)
			assert.True(t, errors.Is(err, stripewebhook.ErrInvalidOption) || errors.Is(err, stripewebhook.ErrNoSecret), err)
		})
	}
}

// A bus event queued runs in the Worker with its origin: the queue
// carries the envelope.
func TestWorkerRunsBusEventsWithTheirOrigin(t *testing.T) {
	a := startAsyncApp(t, newMemQueue(), stripewebhook.NewMemoryStore(0), []stripewebhook.HandlerOption{stripewebhook.WithDestinations(fixture.Destination)})
	var origin *stripewebhook.Origin
	var mu sync.Mutex
	a.mu.Lock()
	a.onRun = func(e *stripewebhook.Event) {
		mu.Lock()
		origin = e.Origin
		mu.Unlock()
	}
	a.mu.Unlock()
	e, err := stripewebhook.ParseEventGrid(webhooktest.EventGrid(t, invoiceEvent(t, "evt_bus_async", "in_bus_async")))
	require.NoError(t, err)
	require.NoError(t, a.h.Deliver(context.Background(), e))
	require.Eventually(t, func() bool { return a.runsOf("evt_bus_async") == 1 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.NotNil(t, origin)
	assert.Equal(t, stripewebhook.EventGrid, origin.Bus)
	assert.Equal(t, fixture.Destination, origin.Destination)
	assert.Equal(t, e.Origin.ID, origin.ID)
}
