package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
		h.ServeHTTP(rec, webhooktest.NewRequest(t, secret, webhooktest.Fixture(t, typ)))
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
