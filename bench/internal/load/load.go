// Package load fires signed events at an HTTP endpoint over keep-alive
// connections, for the end-to-end benchmarks.
package load

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// Event is a payload and its Stripe-Signature header.
type Event struct {
	Payload []byte
	Header  string
}

// Sign returns n copies of base with ids prefix0…prefix(n-1), signed at now
// with secret.
func Sign(base []byte, prefix string, n int, now time.Time, secret string) []Event {
	out := make([]Event, n)
	for i := range out {
		p := webhooktest.WithID(TB{}, base, fmt.Sprintf("%s%d", prefix, i))
		out[i] = Event{p, webhooktest.Header(p, now, secret)}
	}
	return out
}

// Client returns an HTTP client that keeps c connections to one host.
func Client(c int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}}
}

// Fire sends events over c connections and returns each request's latency
// and the wall time. Any status but 200 is an error.
func Fire(client *http.Client, url string, events []Event, c int) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, len(events))
	next := make(chan int, len(events))
	for i := range events {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(events[i].Payload))
				req.Header.Set("Stripe-Signature", events[i].Header)
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), first
}

// TB lets programs use webhooktest's helpers, which report through
// testing.TB: a failure ends the program.
type TB struct{ testing.TB }

func (TB) Helper()                           {}
func (TB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
