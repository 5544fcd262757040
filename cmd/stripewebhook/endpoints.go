package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
)

// errDrift is the exit status of a check that found drift.
var errDrift = errors.New("the endpoint drifted from what the application handles")

// endpoints runs `endpoints check`: the drift between a webhook endpoint
// and the types the application handles; -fix sets its enabled_events.
func endpoints(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: stripewebhook endpoints check [-id we_…|-url URL] -types TYPES [-fix]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help") {
			return nil
		}
		return errUsage
	}
	fs := newFlags("endpoints check", "endpoints check [-id we_…|-url URL] -types TYPES [-fix]  (STRIPE_API_KEY in the environment)", stderr)
	id := fs.String("id", "", "the endpoint's id, we_…")
	endpointURL := fs.String("url", "", "or the endpoint's URL")
	types := fs.String("types", "", "comma-separated patterns the application handles: types, prefixes (invoice.*) or * (required)")
	fix := fs.Bool("fix", false, "set the endpoint's enabled_events to the handled types")
	apiBase := fs.String("api-base", "", "the API's base URL, for a local fake such as stripe-mock (default: Stripe's)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if (*id == "") == (*endpointURL == "") {
		return usageErr(fs, stderr, "give one of -id and -url")
	}
	patterns := split(*types)
	if len(patterns) == 0 {
		return usageErr(fs, stderr, "-types is required: the event types the application handles")
	}
	d := stripewebhook.NewDispatcher()
	for _, p := range patterns {
		if err := d.HandleFunc(p, func(context.Context, *stripewebhook.Event) error { return nil }); err != nil {
			return usageErr(fs, stderr, "-types: %v", err)
		}
	}
	c, err := apiClient(fs, stderr, getenv, *apiBase)
	if err != nil {
		return err
	}
	idOrURL := *id
	if idOrURL == "" {
		idOrURL = *endpointURL
	}
	we, err := stripewebhook.LookupEndpoint(ctx, c, idOrURL)
	if err != nil {
		return err
	}
	if *fix {
		if we, err = stripewebhook.SyncEndpoint(ctx, c, we.ID, d.EnabledEvents(), d.CatchAll()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "endpoint %s: enabled_events updated\n", we.ID)
	}
	r := stripewebhook.EndpointDrift(we, d.EnabledEvents(), d.CatchAll())
	fmt.Fprint(stdout, r)
	if !r.OK() {
		return errDrift
	}
	return nil
}

// apiClient builds the Stripe client from STRIPE_API_KEY and -api-base.
func apiClient(fs interface{ Name() string }, stderr io.Writer, getenv func(string) string, apiBase string) (*stripe.Client, error) {
	key := getenv("STRIPE_API_KEY")
	if len(key) < 4 || (key[:3] != "sk_" && key[:3] != "rk_") {
		fmt.Fprintf(stderr, "stripewebhook %s: STRIPE_API_KEY must hold a secret or restricted API key (sk_… or rk_…)\n", fs.Name())
		return nil, errUsage
	}
	var opts []stripe.ClientOption
	if apiBase != "" {
		opts = append(opts, stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
			URL: stripe.String(apiBase), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
		})))
	}
	return stripe.NewClient(key, opts...), nil
}
