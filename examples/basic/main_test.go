package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/queueurl"
	"github.com/stripewebhook/stripewebhook/sqlitestore"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const secret = "whsec_example_basic"

// onlySecret is an environment with STRIPE_WEBHOOK_SECRET=value only.
func onlySecret(value string) func(string) string {
	return func(name string) string {
		if name == "STRIPE_WEBHOOK_SECRET" {
			return value
		}
		return ""
	}
}

// secretEnv has the webhook secret and the Event Grid secret.
func secretEnv(name string) string {
	if name == eventGridEnv {
		return eventGridSecret
	}
	return onlySecret(secret)(name)
}

const eventGridSecret = "example-eventgrid-shared-secret"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPrintsTheGuideLines(t *testing.T) {
	var out syncBuffer
	h, _, err := newHandler(secret, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"payment_intent.succeeded", "payment_method.attached", "charge.succeeded", "payment_intent.succeeded"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", webhooktest.Fixture(t, typ), secret))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", typ, rec.Code, rec.Body)
		}
	}
	want := "PaymentIntent was successful!\nPaymentMethod was attached to a Customer!\nUnhandled event type: charge.succeeded\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q (the duplicate printed nothing)", out.String(), want)
	}

	// Unsigned: rejected, nothing printed.
	req := httptest.NewRequest("POST", "/webhook", bytes.NewReader(webhooktest.Fixture(t, "payment_intent.succeeded")))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || out.String() != want {
		t.Fatalf("unsigned delivery: %d, printed %q", rec.Code, out.String())
	}
}

// A subscription's lifecycle delivered newest first: the state callback
// applies the canceled subscription and skips every older snapshot, while
// the other events print their line.
func TestSubscriptionStateSkipsStaleSnapshots(t *testing.T) {
	var out, log syncBuffer
	h, _, err := newHandler(secret, &out, &log)
	if err != nil {
		t.Fatal(err)
	}
	s := webhooktest.NewSender(t, h, secret)
	for _, r := range s.SendAll(webhooktest.SubscriptionFlow(t), fixture.Reversed) {
		if !r.Delivered {
			t.Fatalf("not delivered: %v", r.Statuses)
		}
	}
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "Subscription ") {
			states = append(states, l)
		}
	}
	if len(states) != 1 || states[0] != "Subscription "+fixture.Subscription+" is canceled" {
		t.Fatalf("states applied: %q", states)
	}
	if n := strings.Count(log.String(), "stale snapshot"); n != 4 {
		t.Fatalf("%d stale snapshots logged, want the 4 older subscription events:\n%s", n, log.String())
	}
}

// Thin events (event destinations) reach the same handler and the same
// fallback line; a duplicate prints nothing.
func TestThinEventsReachTheFallback(t *testing.T) {
	var out syncBuffer
	h, _, err := newHandler(secret, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"v2.core.event_destination.ping", "v1.billing.meter.error_report_triggered", "v2.core.event_destination.ping"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", webhooktest.Fixture(t, typ), secret))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", typ, rec.Code, rec.Body)
		}
	}
	want := "Unhandled event type: v2.core.event_destination.ping\nUnhandled event type: v1.billing.meter.error_report_triggered\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
}

func TestRefusesToStartWithoutSecret(t *testing.T) {
	for _, env := range []string{"", " , "} {
		err := run(context.Background(), nil, onlySecret(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "stripe listen") {
			t.Fatalf("STRIPE_WEBHOOK_SECRET=%q: %v", env, err)
		}
	}
}

func TestServesOverHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	getenv := func(k string) string {
		if k == "STRIPE_WEBHOOK_SECRET" {
			return "whsec_old, " + secret
		}
		return ""
	}
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, getenv, pw, io.Discard) }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no output")
			return ""
		}
	}
	first := next()
	addr, ok := strings.CutPrefix(first, "listening on ")
	addr, _, _ = strings.Cut(addr, ": POST")
	if !ok || addr == "" {
		t.Fatalf("first line %q", first)
	}
	payload := webhooktest.Fixture(t, "payment_method.attached")
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(payload))
	req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if l := next(); l != "PaymentMethod was attached to a Customer!" {
		t.Fatalf("printed %q", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The embedded asynchronous mode: no server, the queue in a local SQLite
// file; the line is printed by the worker after the 200.
// One machine, -queue sqlite://: the dedup store is in the queue's file,
// so that what ran is remembered across a crash (the memory store would
// forget it, and River's rescued jobs would run again).
func TestSQLiteQueue(t *testing.T) {
	file := "sqlite://" + filepath.Join(t.TempDir(), "queue.db")
	payload := webhooktest.Fixture(t, "payment_method.attached")
	const line = "PaymentMethod was attached to a Customer!"
	post := func(url string) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	url, out, stop := startExample(t, "-queue", file)
	post(url)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), line) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), line) {
		t.Fatalf("printed %q", out.String())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// What ran is in the file, beside the queue, for the next process: a
	// job River rescues after a crash (its completion lost) or a late
	// duplicate finds the event done.
	db, _, err := queueurl.SQLite(file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlitestore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	e, err := stripewebhook.ParseEvent(payload)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := store.Claim(context.Background(), e.ID, time.Minute); err != nil || c.Status != stripewebhook.Done {
		t.Fatalf("the event in the queue's file: %v %v, want done", c, err)
	}
}

func TestUnknownDedup(t *testing.T) {
	err := run(context.Background(), []string{"-dedup", "mysql://x"}, secretEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-dedup") {
		t.Fatalf("err = %v", err)
	}
}

// startReplica runs the example on a free port and returns its URL and the
// lines it prints.
func startReplica(t *testing.T, args ...string) (string, *syncBuffer) {
	url, out, _ := startExample(t, args...)
	return url, out
}

// startExample runs the example with args on a free port and returns its
// URL, the lines it prints, and a stop function (SIGTERM) that returns what
// run returned; the test's cleanup stops it if the test did not.
func startExample(t *testing.T, args ...string) (string, *syncBuffer, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), secretEnv, pw, io.Discard)
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				a, _, _ = strings.Cut(a, ": POST")
				addr <- a
				continue
			}
			out.Write([]byte(sc.Text() + "\n"))
		}
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a + "/webhook", out, stop
	case err := <-done:
		once.Do(func() { cancel(); runErr = err }) // stop must not wait for run again
		t.Fatalf("example did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("example did not start")
	}
	return "", nil, nil
}

// slowConn opens a connection to the example and starts a request on it
// that never completes: kind is "body" (declares 1 MiB, sends a few
// bytes), "chunked" (a chunked body that never ends) or "idle" (one
// complete request, then an idle keep-alive connection).
func slowConn(t *testing.T, url, kind string) net.Conn {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/webhook")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	switch kind {
	case "body":
		fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n{\"id\"")
	case "chunked":
		fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n")
	case "idle":
		fmt.Fprintf(c, "GET /webhook HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return c
}

// closedWithin reports whether the server closed c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c) // until EOF or reset
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// The example's server closes slow bodies, endless chunked bodies and idle
// keep-alive connections, instead of holding them (and their memory) open.
func TestSlowAndIdleConnectionsClosed(t *testing.T) {
	url, _, _ := startExample(t, "-read-timeout", "300ms", "-idle-timeout", "300ms")
	for _, kind := range []string{"body", "chunked", "idle"} {
		t.Run(kind, func(t *testing.T) {
			c := slowConn(t, url, kind)
			if !closedWithin(c, 5*time.Second) {
				t.Fatalf("a %s connection was still open after 5 s", kind)
			}
		})
	}
}

// SIGTERM with slow connections open: the example exits cleanly after its
// grace period, not with an error.
func TestShutdownWithSlowConnections(t *testing.T) {
	url, _, stop := startExample(t, "-read-timeout", "1m", "-grace", "300ms")
	for i := range 10 {
		slowConn(t, url, []string{"body", "chunked"}[i%2])
	}
	time.Sleep(50 * time.Millisecond) // let the server start reading them
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown with slow connections: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown still waiting after 5 s")
	}
}

// Secrets that cannot be the endpoint's are refused at start-up, saying
// why, never showing the value.
func TestRefusesMalformedSecrets(t *testing.T) {
	for env, want := range map[string]string{
		"whsec_...":                  "placeholder",
		"sk_test_51AbCdEfGhIjKlMnOp": "secret API key",
		`"whsec_abc123"`:             "quotes",
	} {
		err := run(context.Background(), []string{"-addr", "127.0.0.1:0"}, onlySecret(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("STRIPE_WEBHOOK_SECRET=%s: %v, want an error saying %q", env, err, want)
			continue
		}
		if strings.Contains(err.Error(), strings.Trim(env, `"`)[4:]) {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}

// Two replicas on one shared store: every event, delivered to both at
// once, prints its line exactly once between them.
func TestTwoReplicasShareAStore(t *testing.T) {
	for _, envs := range [][]string{{"STRIPEWEBHOOK_REDIS_URL"}, {"STRIPEWEBHOOK_POSTGRES_URL"}, {"STRIPEWEBHOOK_REDIS_URL", "STRIPEWEBHOOK_NATS_URL"}, {"STRIPEWEBHOOK_POSTGRES_URL", "STRIPEWEBHOOK_POSTGRES_URL"}, {"STRIPEWEBHOOK_REDIS_URL", "STRIPEWEBHOOK_AMQP_URL"}} {
		t.Run(strings.Join(envs, "+"), func(t *testing.T) { // dedup, then queue
			var args []string
			for i, env := range envs {
				url := os.Getenv(env)
				if url == "" {
					t.Skipf("set %s to run two replicas on a shared store (and queue)", env)
				}
				args = append(args, []string{"-dedup", "-queue"}[i], url)
			}
			a, outA := startReplica(t, args...)
			b, outB := startReplica(t, args...)
			base := webhooktest.Fixture(t, "payment_intent.succeeded")
			const events = 20
			var wg sync.WaitGroup
			for i := range events {
				payload := webhooktest.WithID(t, base, fmt.Sprintf("evt_replicas_%d_%d", time.Now().UnixNano(), i))
				for _, u := range []string{a, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for try := 0; try < 20; try++ {
							req, _ := http.NewRequest("POST", u, bytes.NewReader(payload))
							req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								t.Error(err)
								return
							}
							resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								return
							}
							time.Sleep(20 * time.Millisecond) // 409: Stripe retries later
						}
						t.Error("never acknowledged")
					}()
				}
			}
			wg.Wait()
			count := func() int {
				return strings.Count(outA.String(), "PaymentIntent was successful!\n") + strings.Count(outB.String(), "PaymentIntent was successful!\n")
			}
			for deadline := time.Now().Add(10 * time.Second); count() < events && time.Now().Before(deadline); { // workers run after the 200
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // any duplicate line shows itself
			if lines := count(); lines != events {
				t.Fatalf("%d lines for %d events:\nA:\n%sB:\n%s", lines, events, outA.String(), outB.String())
			}
		})
	}
}
