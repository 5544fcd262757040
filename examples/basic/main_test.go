package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/webhooktest"
)

const secret = "whsec_example_basic"

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
	h, err := newHandler(secret, &out, io.Discard)
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

func TestRefusesToStartWithoutSecret(t *testing.T) {
	for _, env := range []string{"", " , "} {
		err := run(context.Background(), nil, func(string) string { return env }, io.Discard, io.Discard)
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
	req.Header.Set("Stripe-Signature", webhooktest.Header(payload, time.Now(), secret))
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

func TestUnknownDedup(t *testing.T) {
	err := run(context.Background(), []string{"-dedup", "mysql://x"}, func(string) string { return secret }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-dedup") {
		t.Fatalf("err = %v", err)
	}
}

// startReplica runs the example on a free port and returns its URL and the
// lines it prints.
func startReplica(t *testing.T, dedup string) (string, *syncBuffer) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-dedup", dedup}, func(string) string { return secret }, pw, io.Discard)
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a + "/webhook", out
	case err := <-done:
		t.Fatalf("replica did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("replica did not start")
	}
	return "", nil
}

// Two replicas on one shared store: every event, delivered to both at
// once, prints its line exactly once between them.
func TestTwoReplicasShareAStore(t *testing.T) {
	for _, env := range []string{"STRIPEWEBHOOK_REDIS_URL", "STRIPEWEBHOOK_POSTGRES_URL"} {
		t.Run(env, func(t *testing.T) {
			url := os.Getenv(env)
			if url == "" {
				t.Skipf("set %s to run two replicas on a shared store", env)
			}
			a, outA := startReplica(t, url)
			b, outB := startReplica(t, url)
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
							req.Header.Set("Stripe-Signature", webhooktest.Header(payload, time.Now(), secret))
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
			lines := strings.Count(outA.String(), "PaymentIntent was successful!\n") + strings.Count(outB.String(), "PaymentIntent was successful!\n")
			if lines != events {
				t.Fatalf("%d lines for %d events:\nA:\n%sB:\n%s", lines, events, outA.String(), outB.String())
			}
		})
	}
}
