package stripewebhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// MaxTypesPerList is how many types one Events list request may filter on
// (Stripe's limit for types[]).
const MaxTypesPerList = 20

// ReconcileOptions says which undelivered events [Handler.Reconcile] lists.
type ReconcileOptions struct {
	// Since is the oldest creation time to list (Stripe keeps events for
	// 30 days). Zero: 72 hours ago, Stripe's retry window in live mode.
	Since time.Time
	// Cursor, from a previous Reconcile, lists only what came after it;
	// it takes precedence over a Since that is older.
	Cursor Cursor
	// Types to list. Nil: the types the dispatcher handles
	// (Dispatcher.EnabledEvents), or every type if it has a catch-all.
	Types []string
	// Accounts are connected accounts whose events to list too, each with
	// the Stripe-Account header; the platform's own are always listed.
	Accounts []string
}

// Cursor is where the next periodic Reconcile starts: at the creation time
// of the last event processed, or of the first that failed. It is
// JSON-encodable, to be kept between runs (a cron, a ticker).
type Cursor struct {
	After int64 `json:"after"` // Unix seconds; events created at or after it are listed
}

// ReconcileReport says what a Reconcile did.
type ReconcileReport struct {
	Listed  int // undelivered events listed
	Ran     int // events whose callbacks ran and succeeded
	Skipped int // already processed (by a delivery or an earlier run)
	Ignored int // no callback for the type, or filtered out
	Failed  int // callbacks failed (or the store did): the next run retries them
	// Failures names each failed event, oldest first.
	Failures []ReconcileFailure
	// Cursor is where the next run starts.
	Cursor Cursor
}

// ReconcileFailure is one event that failed.
type ReconcileFailure struct {
	EventID string
	Type    string
	Err     error
}

// Reconcile recovers what a downtime missed: it lists, with c, the events
// Stripe failed to deliver (delivery_success=false) since o.Since or the
// cursor, for the handled types (at most [MaxTypesPerList] a request,
// following has_more), for the platform and each connected account in
// o.Accounts, and runs them in chronological order through the same
// filters, API-version policy, dedup store and callbacks as a delivery. An
// event already processed (by a delivery, or by Stripe's late retry) is
// skipped by the store, and a late retry of one Reconcile ran gets 200.
//
// It returns an error only if listing fails; the events' own failures are
// in the report, and the report's Cursor does not pass the first of them.
func (h *Handler) Reconcile(ctx context.Context, c *stripe.Client, o ReconcileOptions) (*ReconcileReport, error) {
	since := o.Since
	if since.IsZero() {
		since = h.c.now().Add(-72 * time.Hour)
	}
	if after := time.Unix(o.Cursor.After, 0); o.Cursor.After > 0 && after.After(since) {
		since = after
	}
	types := o.Types
	if types == nil && !h.dispatcher.CatchAll() {
		types = h.dispatcher.EnabledEvents()
	}
	events, err := ListUndelivered(ctx, c, since, types, o.Accounts...)
	if err != nil {
		return nil, err
	}
	r := &ReconcileReport{Listed: len(events), Cursor: Cursor{After: since.Unix()}}
	failedAt := int64(-1)
	for _, e := range events {
		var rep Report
		err := h.deliver(ctx, e, &rep)
		switch {
		case err != nil:
			r.Failed++
			r.Failures = append(r.Failures, ReconcileFailure{EventID: e.ID, Type: string(e.Type), Err: err})
			if failedAt < 0 {
				failedAt = e.Created
			}
		case rep.Outcome == OutcomeDuplicate:
			r.Skipped++
		case rep.Outcome == OutcomeHandled || rep.Outcome == OutcomeCatchAll:
			r.Ran++
		default:
			r.Ignored++
		}
		if failedAt < 0 {
			r.Cursor.After = e.Created
		}
	}
	if failedAt >= 0 {
		r.Cursor.After = failedAt
	}
	return r, nil
}

// ListUndelivered lists, with c, the events Stripe failed to deliver
// (delivery_success=false) created at or after since, of types (nil: every
// type) in groups of [MaxTypesPerList], for the platform and each of the
// connected accounts (with Stripe-Account), oldest first. Each event is
// decoded as a delivery would be; its Payload is the event as the API
// returned it (compact JSON), ready to sign and deliver again.
func ListUndelivered(ctx context.Context, c *stripe.Client, since time.Time, types []string, accounts ...string) ([]*Event, error) {
	if c == nil {
		return nil, ErrNoClient
	}
	var events []*Event
	for _, account := range append([]string{""}, accounts...) {
		listed, err := listUndelivered(ctx, c, since, types, account)
		if err != nil {
			return nil, err
		}
		events = append(events, listed...)
	}
	// Stripe lists newest first: oldest first, as they happened.
	sort.SliceStable(events, func(i, j int) bool {
		if events[i].Created != events[j].Created {
			return events[i].Created < events[j].Created
		}
		return events[i].ID < events[j].ID
	})
	return events, nil
}

// listUndelivered lists one account's undelivered events ("" the
// platform), in groups of types.
func listUndelivered(ctx context.Context, c *stripe.Client, since time.Time, types []string, account string) ([]*Event, error) {
	groups := [][]string{nil}
	if types != nil {
		groups = nil
		for len(types) > 0 {
			n := min(len(types), MaxTypesPerList)
			groups, types = append(groups, types[:n]), types[n:]
		}
	}
	var out []*Event
	for _, group := range groups {
		p := &stripe.EventListParams{
			DeliverySuccess: stripe.Bool(false),
			CreatedRange:    &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
		}
		if group != nil { // an empty types[] is a malformed request (stripe-mock said so)
			p.Types = stripe.StringSlice(group)
		}
		p.Limit = stripe.Int64(100)
		if account != "" {
			p.SetStripeAccount(account)
		}
		for se, err := range c.V1Events.List(ctx, p) {
			if err != nil {
				return nil, fmt.Errorf("stripewebhook: listing undelivered events: %w", err)
			}
			e, err := eventFromAPI(se)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// eventFromAPI turns an event from the API into an Event, through the
// envelope parser, as if it had been delivered.
func eventFromAPI(se *stripe.Event) (*Event, error) {
	payload, err := json.Marshal(se)
	if err != nil {
		return nil, fmt.Errorf("stripewebhook: event %s from the API: %w", se.ID, err)
	}
	e := new(Event)
	if err := parseEnvelope(payload, e); err != nil {
		return nil, errors.Join(fmt.Errorf("stripewebhook: event %s from the API", se.ID), err)
	}
	return e, nil
}
