package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook"
)

// replay lists the events Stripe failed to deliver and delivers each,
// signed, to an endpoint.
func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", "replay -url URL [flags]  (STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET in the environment)", stderr)
	endpoint := fs.String("url", "", "the endpoint to deliver to (required)")
	secretFlag, secretFile := secretFlags(fs)
	since := fs.Duration("since", 72*time.Hour, "list events created in the last `DURATION` (Stripe keeps them 30 days)")
	types := fs.String("types", "", "comma-separated event types to list (default: every type)")
	accounts := fs.String("accounts", "", "comma-separated connected accounts whose events to list too (Connect)")
	apiBase := fs.String("api-base", "", "the API's base URL, for a local fake such as stripe-mock (default: Stripe's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr(fs, stderr, "-url must be an http(s) URL")
	}
	secret, err := endpointSecret(*secretFlag, *secretFile, getenv, stderr)
	if err != nil {
		return err
	}
	if err := checkSecret(secret); err != nil {
		return usageErr(fs, stderr, "%v", err)
	}
	if *since <= 0 || *since > 30*24*time.Hour {
		return usageErr(fs, stderr, "-since must be between 0 and 720h (Stripe keeps events 30 days)")
	}
	c, err := apiClient(fs, stderr, getenv, *apiBase)
	if err != nil {
		return err
	}
	events, err := stripewebhook.ListUndelivered(ctx, c, time.Now().Add(-*since), split(*types), split(*accounts)...)
	if err != nil {
		return err
	}
	d := newDeliverer(*endpoint, secret, "")
	failed := 0
	for _, e := range events {
		status, body, err := d.deliver(ctx, e.Payload, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s %d %s\n", e.ID, e.Type, status, body)
		if status < 200 || status > 299 {
			failed++
		}
	}
	fmt.Fprintf(stdout, "%d undelivered events replayed, %d failed\n", len(events), failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries did not get a 2xx", failed, len(events))
	}
	return nil
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
