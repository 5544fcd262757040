package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
)

// Fetch errors. A fetch that fails inside a callback fails the delivery
// (500), so that Stripe retries it.
var (
	// ErrNoClient means a thin event's full event or related object was
	// asked for, but the dispatcher has no Stripe client ([WithClient]).
	ErrNoClient = errors.New("stripewebhook: no Stripe client to fetch with (WithClient)")
	// ErrNotThin means FetchEvent or FetchRelated was called for a
	// snapshot event, which carries its object already.
	ErrNotThin = errors.New("stripewebhook: not a thin event")
	// ErrNoRelatedObject means a thin event has no related object, or one
	// of a type this package cannot retrieve.
	ErrNoRelatedObject = errors.New("stripewebhook: no related object to fetch")
)

// WithClient gives the dispatcher the Stripe client that [FetchEvent],
// [FetchRelated] and [OnThin] callbacks use for thin events. The client is
// the caller's, built with stripe.NewClient.
func WithClient(c *stripe.Client) DispatcherOption {
	return func(d *Dispatcher) { d.client = c }
}

// FetchEvent retrieves the full event of the thin event e
// (V2CoreEvents.Retrieve, with the Stripe-Context header set to e.Account
// for a connected account's event), once per event however many callbacks
// ask. T is stripe-go's type for e.Type, such as
// stripe.V1BillingMeterErrorReportTriggeredEvent, or stripe.V2RawEvent for
// a type stripe-go does not know; another T is an [ErrObjectMismatch].
func FetchEvent[T any](ctx context.Context, e *Event) (*T, error) {
	if e.fullEvent == nil {
		if err := e.canFetch(); err != nil {
			return nil, err
		}
		params := &stripe.V2CoreEventRetrieveParams{}
		setContext(&params.Params, e.Account)
		v, err := e.client.V2CoreEvents.Retrieve(ctx, e.ID, params)
		if err != nil {
			return nil, fmt.Errorf("stripewebhook: fetching event %s: %w", e.ID, err)
		}
		e.fullEvent = v
	}
	v, ok := e.fullEvent.(*T)
	if !ok {
		return nil, fmt.Errorf("%w: event %s is a %T, the callback takes a *%s", ErrObjectMismatch, e.ID, e.fullEvent, typeName[T]())
	}
	return v, nil
}

// FetchRelated retrieves the object the thin event e is about (its
// related_object), typed, such as *stripe.BillingMeter, with the
// Stripe-Context header set to e.Account for a connected account's event,
// once per event however many callbacks ask.
func FetchRelated[T any](ctx context.Context, e *Event) (*T, error) {
	if e.relatedObject == nil {
		if err := e.canFetch(); err != nil {
			return nil, err
		}
		if e.Related == nil {
			return nil, fmt.Errorf("%w: %s (%s) has none", ErrNoRelatedObject, e.ID, e.Type)
		}
		retrieve := retrieverNamed(relatedGoTypes[e.Related.Type])
		if retrieve == nil {
			return nil, fmt.Errorf("%w: %s is a %q, which this package does not retrieve; GET %s with your client",
				ErrNoRelatedObject, e.Related.ID, e.Related.Type, e.Related.URL)
		}
		v, err := retrieve(ctx, e.client, e.Related.ID, func(p *stripe.Params) { setContext(p, e.Account) })
		if err != nil {
			return nil, fmt.Errorf("stripewebhook: fetching %s %s of event %s: %w", e.Related.Type, e.Related.ID, e.ID, err)
		}
		e.relatedObject = v
	}
	v, ok := e.relatedObject.(*T)
	if !ok {
		return nil, fmt.Errorf("%w: the related object of %s is a %T, the callback takes a *%s", ErrObjectMismatch, e.ID, e.relatedObject, typeName[T]())
	}
	return v, nil
}

func (e *Event) canFetch() error {
	if e.Kind != Thin {
		return fmt.Errorf("%w: %s (%s)", ErrNotThin, e.ID, e.Type)
	}
	if e.client == nil {
		return ErrNoClient
	}
	return nil
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// relatedGoTypes names the stripe-go type of each related_object.type of
// the thin types stripe-go v82 knows (a test holds it to
// eventtypes.ThinEvents); the object is retrieved by the client's service
// for that type, as Refetch does.
var relatedGoTypes = map[string]string{
	"billing.meter":             "BillingMeter",
	"v2.core.event_destination": "V2EventDestination",
}

func setContext(p *stripe.Params, stripeContext string) {
	if stripeContext != "" {
		p.SetStripeContext(stripeContext)
	}
}

// OnThin registers a callback for thin events that receives the full
// event, fetched with the dispatcher's client ([WithClient]) once per
// event: T is stripe-go's type for the pattern's event type, such as
// stripe.V1BillingMeterErrorReportTriggeredEvent. The registration fails
// with [ErrObjectMismatch] if the pattern matches a snapshot type, or a
// thin type whose full event is another T.
func OnThin[T any](d *Dispatcher, pattern string, fn func(ctx context.Context, e *Event, full *T) error) error {
	if err := checkThinType(pattern, reflect.TypeFor[T]()); err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.record(err)
	}
	return d.HandleFunc(pattern, func(ctx context.Context, e *Event) error {
		full, err := FetchEvent[T](ctx, e)
		if err != nil {
			return err
		}
		return fn(ctx, e, full)
	})
}

// checkThinType reports a pattern that matches snapshot types, or thin
// types whose full event is not t.
func checkThinType(pattern string, t reflect.Type) error {
	var types []string
	switch {
	case pattern == "*":
		return fmt.Errorf("%w: OnThin for %q would receive snapshot events too", ErrObjectMismatch, pattern)
	case strings.HasSuffix(pattern, ".*"):
		types = eventtypes.WithPrefix(pattern[:len(pattern)-1])
	default:
		types = []string{pattern}
	}
	for _, et := range types {
		info, thin := eventtypes.ThinEvents[et]
		switch {
		case !thin && eventtypes.IsKnown(et):
			return fmt.Errorf("%w: %q matches %s, a snapshot event type: OnThin is for thin events", ErrObjectMismatch, pattern, et)
		case thin && (t.PkgPath() != stripePkg || t.Name() != info.GoType):
			return fmt.Errorf("%w: %q: the full %s event is a *stripe.%s, the callback takes a *%s", ErrObjectMismatch, pattern, et, info.GoType, t)
		}
	}
	return nil
}
