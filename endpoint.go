package stripewebhook

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stripe/stripe-go/v82"
)

// EndpointReport is the drift between a webhook endpoint's configuration
// at Stripe and what the application handles. It never holds the
// endpoint's secret.
type EndpointReport struct {
	ID, URL    string
	Status     string // enabled or disabled
	APIVersion string // the endpoint's, or "" (the account's default)
	// Unhandled are types the endpoint receives that nothing handles
	// ("*" when it receives every type and the application has no
	// catch-all): Stripe sends them, the handler acknowledges and drops them.
	Unhandled []string
	// NeverSent are handled types the endpoint is not enabled for: their
	// callbacks never run.
	NeverSent []string
	// VersionDrift says why the endpoint's API version differs from
	// stripe-go v82's release train, or is "".
	VersionDrift string
}

// OK reports whether there is no drift and the endpoint is enabled.
func (r *EndpointReport) OK() bool {
	return r.Status != "disabled" && len(r.Unhandled) == 0 && len(r.NeverSent) == 0 && r.VersionDrift == ""
}

// String is the report for a person: one line per finding.
func (r *EndpointReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "endpoint %s (%s): %s\n", r.ID, r.URL, r.Status)
	if r.Status == "disabled" {
		b.WriteString("  disabled: Stripe sends nothing to it (it fails too often, or was turned off); events since are undelivered: replay them\n")
	}
	if len(r.Unhandled) > 0 {
		fmt.Fprintf(&b, "  sent but not handled (acknowledged and dropped): %s\n", strings.Join(r.Unhandled, ", "))
	}
	if len(r.NeverSent) > 0 {
		fmt.Fprintf(&b, "  handled but never sent (not in enabled_events): %s\n", strings.Join(r.NeverSent, ", "))
	}
	if r.VersionDrift != "" {
		fmt.Fprintf(&b, "  API version: %s\n", r.VersionDrift)
	}
	if r.OK() {
		b.WriteString("  no drift\n")
	}
	return b.String()
}

// EndpointDrift compares we with the types an application handles (exact
// and prefix callbacks: Dispatcher.EnabledEvents) and whether it has a
// catch-all (Dispatcher.CatchAll).
func EndpointDrift(we *stripe.WebhookEndpoint, handled []string, catchAll bool) *EndpointReport {
	r := &EndpointReport{ID: we.ID, URL: we.URL, Status: we.Status, APIVersion: we.APIVersion}
	all := slices.Contains(we.EnabledEvents, "*")
	switch {
	case all && !catchAll:
		r.Unhandled = []string{"*"}
	case !all && !catchAll:
		for _, t := range we.EnabledEvents {
			if !slices.Contains(handled, t) {
				r.Unhandled = append(r.Unhandled, t)
			}
		}
	}
	if !all {
		for _, t := range handled {
			if !slices.Contains(we.EnabledEvents, t) {
				r.NeverSent = append(r.NeverSent, t)
			}
		}
	}
	if v := we.APIVersion; v != "" && v != stripe.APIVersion && !sameReleaseTrain(v) {
		r.VersionDrift = fmt.Sprintf("%s is not on stripe-go v82's release train (%s): typed objects may decode wrongly", v, stripe.APIVersion)
	}
	return r
}

// LookupEndpoint retrieves a webhook endpoint by id (we_…) or by URL.
func LookupEndpoint(ctx context.Context, c *stripe.Client, idOrURL string) (*stripe.WebhookEndpoint, error) {
	if c == nil {
		return nil, ErrNoClient
	}
	if strings.HasPrefix(idOrURL, "we_") {
		we, err := c.V1WebhookEndpoints.Retrieve(ctx, idOrURL, nil)
		if err != nil {
			return nil, fmt.Errorf("stripewebhook: retrieving endpoint %s: %w", idOrURL, err)
		}
		return we, nil
	}
	var urls []string
	for we, err := range c.V1WebhookEndpoints.List(ctx, &stripe.WebhookEndpointListParams{}) {
		if err != nil {
			return nil, fmt.Errorf("stripewebhook: listing endpoints: %w", err)
		}
		if we.URL == idOrURL {
			return we, nil
		}
		urls = append(urls, we.URL)
	}
	return nil, fmt.Errorf("stripewebhook: no webhook endpoint has the URL %s (the account has %d: %s)", idOrURL, len(urls), strings.Join(urls, ", "))
}

// SyncEndpoint sets the endpoint's enabled_events to the handled types,
// or to "*" for an application with a catch-all.
func SyncEndpoint(ctx context.Context, c *stripe.Client, id string, handled []string, catchAll bool) (*stripe.WebhookEndpoint, error) {
	if c == nil {
		return nil, ErrNoClient
	}
	events := handled
	if catchAll {
		events = []string{"*"}
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: no event type to enable", ErrNoCallbacks)
	}
	we, err := c.V1WebhookEndpoints.Update(ctx, id, &stripe.WebhookEndpointUpdateParams{EnabledEvents: stripe.StringSlice(events)})
	if err != nil {
		return nil, fmt.Errorf("stripewebhook: updating endpoint %s: %w", id, err)
	}
	return we, nil
}
