package webhooktest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// Sender delivers events to a handler the way Stripe does, for tests of an
// application's handler against Stripe's delivery semantics: signed
// deliveries, retries of any non-2xx on a compressed schedule, duplicates
// (sequential and concurrent), flows out of order, and an endpoint Stripe
// disables after too many failed events. It records every event in a fake
// list API (delivered or not) for the reconciler. It is safe for concurrent
// use.
//
//	s := webhooktest.NewSender(t, handler, "whsec_test")
//	r := s.Send(webhooktest.Fixture(t, "invoice.paid")) // retried until a 2xx
//	s.SendAll(webhooktest.SubscriptionFlow(t), fixture.Shuffled(1))
type Sender struct {
	tb      testing.TB
	target  http.Handler
	secret  string
	retries []time.Duration
	disable int
	api     *StripeAPI

	mu       sync.Mutex
	failures int // events in a row whose every attempt failed
	disabled bool
}

// SenderOption configures a Sender.
type SenderOption func(*Sender)

// Retries sets the delays between attempts (default: five attempts, 0, 1,
// 2, 4 and 8 ms apart: Stripe's exponential schedule over three days,
// compressed). Stripe retries every non-2xx.
func Retries(delays ...time.Duration) SenderOption {
	return func(s *Sender) { s.retries = delays }
}

// DisableAfter makes the endpoint disabled, as Stripe does, once n events
// in a row failed every attempt (default 3): later events are not
// delivered, only listed as undelivered for the reconciler.
func DisableAfter(n int) SenderOption { return func(s *Sender) { s.disable = n } }

// NewSender returns a Sender to target (a handler in process, or
// HTTPTarget for a server), signing with secret.
func NewSender(tb testing.TB, target http.Handler, secret string, opts ...SenderOption) *Sender {
	s := &Sender{tb: tb, target: target, secret: secret, retries: []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond}, disable: 3, api: NewStripeAPI(tb)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// HTTPTarget delivers to a running server at url, as Stripe does.
func HTTPTarget(url string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, url, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway) // a failed attempt, as a timeout is to Stripe
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	})
}

// API is the fake Stripe API that lists the sender's events, delivered or
// not: give its Client to Handler.Reconcile.
func (s *Sender) API() *StripeAPI { return s.api }

// Result is what became of one event.
type Result struct {
	Statuses  []int // one per attempt
	Delivered bool  // an attempt got a 2xx
	Disabled  bool  // not attempted: the endpoint was disabled
}

// Send delivers payload, retrying any non-2xx on the schedule, until an
// attempt gets a 2xx or the attempts are exhausted.
func (s *Sender) Send(payload []byte) Result {
	s.tb.Helper()
	s.mu.Lock()
	disabled := s.disabled
	s.mu.Unlock()
	var r Result
	if disabled {
		r.Disabled = true
	} else {
		for _, d := range s.retries {
			time.Sleep(d)
			code := s.attempt(payload)
			r.Statuses = append(r.Statuses, code)
			if code >= 200 && code < 300 {
				r.Delivered = true
				break
			}
		}
	}
	s.mu.Lock()
	switch {
	case r.Delivered:
		s.failures = 0
	case !r.Disabled:
		s.failures++
		if s.failures >= s.disable {
			s.disabled = true
		}
	}
	s.mu.Unlock()
	s.api.AddListedEvent(s.tb, payload, r.Delivered)
	return r
}

// attempt makes one signed delivery and returns its status.
func (s *Sender) attempt(payload []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), s.secret))
	rec := httptest.NewRecorder()
	s.target.ServeHTTP(rec, req)
	return rec.Code
}

// SendTimes delivers the same event n times, one after the other, as
// Stripe may.
func (s *Sender) SendTimes(payload []byte, n int) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i] = s.Send(payload)
	}
	return out
}

// SendConcurrently delivers the same event n times at once, as Stripe may
// to replicas behind a load balancer.
func (s *Sender) SendConcurrently(payload []byte, n int) []Result {
	out := make([]Result, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.Send(payload)
		}()
	}
	wg.Wait()
	return out
}

// SendAll delivers events in order's order and returns their results in
// the events' own order.
func (s *Sender) SendAll(events [][]byte, order fixture.Order) []Result {
	s.tb.Helper()
	index := map[*byte]int{}
	for i, e := range events {
		index[&e[0]] = i
	}
	out := make([]Result, len(events))
	for _, e := range order(events) {
		out[index[&e[0]]] = s.Send(e)
	}
	return out
}

// SubscriptionFlow is [fixture.SubscriptionFlow] ending a minute ago,
// failing tb on error.
func SubscriptionFlow(tb testing.TB) [][]byte {
	tb.Helper()
	flow, err := fixture.SubscriptionFlow(time.Now().Add(-time.Minute))
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return flow
}
