// Package load fires signed events at an HTTP endpoint over keep-alive
// connections, for the end-to-end benchmarks.
package load

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
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
		out[i] = Event{p, fixture.Header(p, now, secret)}
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

// FireRaw is Fire on raw keep-alive TCP connections to addr (host:port):
// each request is rendered once, written in one call, and its response
// read with no more parsing than the status line and Content-Length. It
// costs the machine a fraction of net/http's client, which matters when
// the load generator shares two cores with the server it measures.
func FireRaw(addr string, events []Event, c int) ([]time.Duration, time.Duration, error) {
	reqs := make([][]byte, len(events))
	for i, e := range events {
		reqs[i] = fmt.Appendf(nil, "POST /webhook HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json; charset=utf-8\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n%s", addr, e.Header, len(e.Payload), e.Payload)
	}
	lat := make([]time.Duration, len(events))
	var next atomic.Int64
	errs := make(chan error, c)
	start := time.Now()
	for range c {
		go func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					errs <- nil
					return
				}
				t0 := time.Now()
				if _, err := conn.Write(reqs[i]); err != nil {
					errs <- err
					return
				}
				if err := readResponse(r); err != nil {
					errs <- fmt.Errorf("event %d: %w", i, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	var first error
	for range c {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return lat, time.Since(start), first
}

// readResponse reads one HTTP/1.1 response and fails unless it is a 200.
func readResponse(r *bufio.Reader) error {
	status, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	ok := bytes.HasPrefix(status, []byte("HTTP/1.1 200 "))
	code := string(bytes.TrimSpace(status))
	length := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, found := bytes.CutPrefix(line, []byte("Content-Length: ")); found {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
		if bytes.HasPrefix(line, []byte("Transfer-Encoding: ")) {
			return fmt.Errorf("%s: a chunked response, which FireRaw does not read", code)
		}
	}
	if _, err := r.Discard(length); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s", code)
	}
	return nil
}
