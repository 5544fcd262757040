package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
)

// sender sends an event, and again on failure.
type sender interface {
	deliverRetrying(ctx context.Context, ev namedEvent, t time.Time, retries int, stdout io.Writer) (bool, error)
}

// deliverer POSTs payloads to an endpoint, signed as Stripe signs them
// (or, for a cloud bus's envelope, with the bearer token Event Grid would
// present, if any).
type deliverer struct {
	url    string
	secret string // "": not signed
	bearer string
	client *http.Client
}

func newDeliverer(url, secret, bearer string) *deliverer {
	return &deliverer{url: url, secret: secret, bearer: bearer, client: &http.Client{Timeout: 30 * time.Second}}
}

// deliver signs payload at t and POSTs it; it returns the status and the
// start of the response body.
func (d *deliverer) deliver(ctx context.Context, payload []byte, t time.Time) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	if d.secret != "" {
		req.Header.Set(stripewebhook.SignatureHeader, fixture.Header(payload, t, d.secret))
	}
	if d.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+d.bearer)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("POST %s: %w", d.url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// deliverRetrying delivers ev signed at t (plus the time waited), and
// again after a non-2xx, up to retries times, 1 s, 2 s, 4 s … apart:
// Stripe's retries, compressed. It prints each attempt's status and says
// whether one got a 2xx.
func (d *deliverer) deliverRetrying(ctx context.Context, ev namedEvent, t time.Time, retries int, stdout io.Writer) (bool, error) {
	start := time.Now()
	delay := time.Second
	for attempt := 0; ; attempt++ {
		status, body, err := d.deliver(ctx, ev.payload, t.Add(time.Since(start)))
		if err != nil && (attempt == retries || ctx.Err() != nil) {
			return false, err
		}
		ok := err == nil && status >= 200 && status <= 299
		if ok || attempt == retries {
			fmt.Fprintf(stdout, "%s %d %s\n", ev.name, status, body)
			return ok, nil
		}
		if err != nil { // Stripe retries an endpoint it could not reach too
			fmt.Fprintf(stdout, "%s %v (retry in %v)\n", ev.name, err, delay)
		} else {
			fmt.Fprintf(stdout, "%s %d %s (retry in %v)\n", ev.name, status, body, delay)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// checkSecret says what is wrong with a -secret, without showing it.
func checkSecret(secret string) error {
	if secret == "" {
		return fmt.Errorf("the endpoint's signing secret is required: %s=whsec_… in the environment (or -secret-file FILE)", secretEnv)
	}
	_, err := stripewebhook.NewVerifier(stripewebhook.Secrets(secret))
	return err
}
