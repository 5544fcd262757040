package stripewebhook

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/stripe/stripe-go/v82"
)

// Refetch retrieves, with c, the current state of e's data.object as a
// *T (such as *stripe.Subscription): the answer Stripe gives to events that
// arrive out of order or late ("fetch the object"). A connected account's
// event is fetched with its Stripe-Account. The result is cached per event
// however many callbacks ask. T must be a stripe-go resource that the
// client can retrieve by id; another T is an [ErrObjectMismatch]. Thin
// events use [FetchRelated].
func Refetch[T any](ctx context.Context, c *stripe.Client, e *Event) (*T, error) {
	if v, ok := e.refetched.(*T); ok {
		return v, nil
	}
	if c == nil {
		return nil, ErrNoClient
	}
	if e.Kind == Thin {
		return nil, fmt.Errorf("%w: %s is a thin event (FetchRelated)", ErrNoObject, e.ID)
	}
	if err := checkObjectType[T](e.Object); err != nil {
		return nil, err
	}
	id := objectID(e.Object)
	if id == "" {
		return nil, fmt.Errorf("%w: data.object of %s has no id to fetch", ErrInvalidPayload, e.ID)
	}
	retrieve := retrieverFor(reflect.TypeFor[T]())
	if retrieve == nil {
		return nil, fmt.Errorf("%w: stripe-go's client has no Retrieve for *%s", ErrObjectMismatch, reflect.TypeFor[T]())
	}
	v, err := retrieve(ctx, c, id, func(p *stripe.Params) {
		if e.Account != "" {
			p.SetStripeAccount(e.Account)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("stripewebhook: refetching %s of event %s: %w", id, e.ID, err)
	}
	t := v.(*T)
	e.refetched = t
	return t, nil
}

// retrieveFunc calls a service's Retrieve(ctx, id, params) on a client,
// with the params that header sets (Stripe-Account, Stripe-Context).
type retrieveFunc func(ctx context.Context, c *stripe.Client, id string, header func(*stripe.Params)) (any, error)

var (
	retrieveOnce    sync.Once
	retrieveFns     map[reflect.Type]retrieveFunc // resource type (stripe.Invoice) → its Retrieve
	retrieveByNames map[string]retrieveFunc       // the same, by the type's name ("Invoice")
)

// retrieverFor finds, among the services of stripe.Client, the one whose
// Retrieve(ctx, id string, *Params) returns (*t, error). The table is built
// once, by reflection over the client's fields, so that every resource
// stripe-go can retrieve is covered without a list to keep.
func retrieverFor(t reflect.Type) retrieveFunc {
	buildRetrievers()
	return retrieveFns[t]
}

// retrieverNamed is retrieverFor by the name of a stripe-go type, as the
// generated event lists name them ("BillingMeter").
func retrieverNamed(name string) retrieveFunc {
	buildRetrievers()
	return retrieveByNames[name]
}

func buildRetrievers() {
	retrieveOnce.Do(func() {
		retrieveFns, retrieveByNames = map[reflect.Type]retrieveFunc{}, map[string]retrieveFunc{}
		ct := reflect.TypeFor[stripe.Client]()
		ctxType, errType := reflect.TypeFor[context.Context](), reflect.TypeFor[error]()
		for i := range ct.NumField() {
			f := ct.Field(i)
			m, ok := f.Type.MethodByName("Retrieve")
			// m.Type includes the receiver: (svc, ctx, id, *params) (*T, error).
			if !ok || m.Type.NumIn() != 4 || m.Type.NumOut() != 2 || m.Type.In(1) != ctxType ||
				m.Type.In(2).Kind() != reflect.String || m.Type.In(3).Kind() != reflect.Pointer ||
				m.Type.Out(0).Kind() != reflect.Pointer || m.Type.Out(1) != errType {
				continue
			}
			res := m.Type.Out(0).Elem()
			if _, dup := retrieveFns[res]; dup {
				continue // the first service wins (v1 before v2)
			}
			index, paramsType := i, m.Type.In(3).Elem()
			fn := func(ctx context.Context, c *stripe.Client, id string, header func(*stripe.Params)) (any, error) {
				svc := reflect.ValueOf(c).Elem().Field(index)
				params := reflect.New(paramsType)
				if p, ok := params.Interface().(stripe.ParamsContainer); ok {
					header(p.GetParams())
				}
				out := svc.MethodByName("Retrieve").Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(id), params})
				if err, _ := out[1].Interface().(error); err != nil {
					return nil, err
				}
				return out[0].Interface(), nil
			}
			retrieveFns[res], retrieveByNames[res.Name()] = fn, fn
		}
	})
}
