package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stripewebhook/stripewebhook/internal/eventtypes"
)

// Callback handles one event. Returning an error fails the delivery, so
// that Stripe retries it.
type Callback func(ctx context.Context, e *Event) error

// Registration errors. [Dispatcher.Err] and [NewHandler] report them too, so
// that a registration whose error was ignored still stops start-up.
var (
	// ErrUnknownEventType means a pattern names no event type that
	// stripe-go v82 knows. Use [AllowUnknownTypes] for newer types.
	ErrUnknownEventType = errors.New("stripewebhook: unknown event type")
	// ErrInvalidPattern means a pattern is empty, or has a '*' anywhere but
	// alone or as its last segment ("customer.subscription.*").
	ErrInvalidPattern = errors.New("stripewebhook: invalid event type pattern")
	// ErrDispatcherStarted means a callback was registered after the
	// dispatcher began dispatching: the routing table is fixed by then.
	ErrDispatcherStarted = errors.New("stripewebhook: dispatcher already started")
)

// PanicError is returned by [Dispatcher.Dispatch] when a callback panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("stripewebhook: callback panicked: %v", e.Value)
}

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Dispatcher routes events to callbacks by type. Register every callback
// before the first [Dispatcher.Dispatch] (or before passing the dispatcher to
// [NewHandler]); from then on the routing table is fixed and only read, and
// Dispatch is safe for concurrent use.
//
// An event runs, in this order: the callbacks registered for its exact type,
// then those of every matching prefix pattern ("invoice.*"), then the
// catch-all ones ("*"). The first error stops the run. The fallback runs
// only for events that no exact or prefix callback handles.
type Dispatcher struct {
	allowUnknown bool

	mu       sync.Mutex // guards registration
	started  atomic.Bool
	exact    map[string][]Callback
	prefixes []prefixRoute
	all      []Callback
	fallback Callback
	err      error

	// Set by start, read-only afterwards.
	routes   map[string]route // every known or registered type
	startErr error            // the registration errors, as of start
}

type prefixRoute struct {
	prefix string // "invoice." for "invoice.*"
	fn     Callback
}

type route struct {
	fns     []Callback
	handled bool // an exact or prefix callback matched
}

// DispatcherOption configures a [Dispatcher].
type DispatcherOption func(*Dispatcher)

// AllowUnknownTypes accepts patterns for event types that stripe-go v82 does
// not declare, for types newer than the library. Without it such a pattern
// is an [ErrUnknownEventType], which catches typos at start-up.
func AllowUnknownTypes() DispatcherOption {
	return func(d *Dispatcher) { d.allowUnknown = true }
}

// NewDispatcher returns an empty Dispatcher.
func NewDispatcher(opts ...DispatcherOption) *Dispatcher {
	d := &Dispatcher{exact: make(map[string][]Callback)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// HandleFunc registers fn for pattern: an event type ("invoice.paid"), a
// prefix pattern ("customer.subscription.*") or "*" for every event.
// Callbacks for one pattern run in registration order.
func (d *Dispatcher) HandleFunc(pattern string, fn Callback) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started.Load() {
		return ErrDispatcherStarted
	}
	return d.record(d.register(pattern, fn))
}

// On registers a typed callback: fn receives data.object decoded as a *T,
// such as *stripe.Invoice for "invoice.paid", decoded once per event. If T
// is a stripe-go type that is not the event's object, the delivery fails
// with [ErrObjectMismatch].
func On[T any](d *Dispatcher, pattern string, fn func(ctx context.Context, e *Event, obj *T) error) error {
	return d.HandleFunc(pattern, func(ctx context.Context, e *Event) error {
		obj, err := Decode[T](e)
		if err != nil {
			return err
		}
		return fn(ctx, e, obj)
	})
}

// Fallback registers fn for the events that no exact or prefix callback
// handles. There is one fallback; registering another replaces it.
func (d *Dispatcher) Fallback(fn Callback) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started.Load() {
		return ErrDispatcherStarted
	}
	if fn == nil {
		return d.record(fmt.Errorf("%w: nil fallback", ErrInvalidPattern))
	}
	d.fallback = fn
	return nil
}

// Err returns the registration errors so far, joined, or nil.
func (d *Dispatcher) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func (d *Dispatcher) record(err error) error {
	if err != nil {
		d.err = errors.Join(d.err, err)
	}
	return err
}

func (d *Dispatcher) register(pattern string, fn Callback) error {
	if fn == nil {
		return fmt.Errorf("%w: nil callback for %q", ErrInvalidPattern, pattern)
	}
	switch {
	case pattern == "*":
		d.all = append(d.all, fn)
	case strings.HasSuffix(pattern, ".*"):
		prefix := pattern[:len(pattern)-1]
		if prefix == "." || strings.Contains(prefix, "*") || strings.Contains(prefix, "..") {
			return fmt.Errorf("%w: %q", ErrInvalidPattern, pattern)
		}
		if !d.allowUnknown && len(eventtypes.WithPrefix(prefix)) == 0 {
			return fmt.Errorf("%w: no stripe-go event type matches %q", ErrUnknownEventType, pattern)
		}
		d.prefixes = append(d.prefixes, prefixRoute{prefix: prefix, fn: fn})
	case pattern == "" || strings.ContainsAny(pattern, "* \t"):
		return fmt.Errorf("%w: %q", ErrInvalidPattern, pattern)
	default:
		if !d.allowUnknown && !eventtypes.IsKnown(pattern) {
			return fmt.Errorf("%w: %q (a typo? AllowUnknownTypes accepts types newer than stripe-go)", ErrUnknownEventType, pattern)
		}
		d.exact[pattern] = append(d.exact[pattern], fn)
	}
	return nil
}

// start fixes the routing table. It is idempotent and safe to call
// concurrently.
func (d *Dispatcher) start() {
	if d.started.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started.Load() {
		return
	}
	routes := make(map[string]route, len(eventtypes.Known)+len(d.exact))
	for _, t := range eventtypes.Known {
		routes[t] = d.resolve(t)
	}
	for t := range d.exact {
		routes[t] = d.resolve(t)
	}
	d.routes = routes
	d.startErr = d.err
	d.started.Store(true)
}

func (d *Dispatcher) resolve(t string) route {
	var r route
	r.fns = append(r.fns, d.exact[t]...)
	for _, p := range d.prefixes {
		if strings.HasPrefix(t, p.prefix) {
			r.fns = append(r.fns, p.fn)
		}
	}
	r.handled = len(r.fns) > 0
	r.fns = append(r.fns, d.all...)
	if !r.handled && d.fallback != nil {
		r.fns = append(r.fns, d.fallback)
	}
	return r
}

// Handles reports whether an exact or prefix callback is registered for
// the event type. Like Dispatch, it fixes the routing table.
func (d *Dispatcher) Handles(eventType string) bool {
	d.start()
	return d.route(eventType).handled
}

func (d *Dispatcher) route(t string) route {
	if r, ok := d.routes[t]; ok {
		return r
	}
	return d.resolve(t)
}

// EnabledEvents returns the event types this dispatcher handles, sorted, for
// a webhook endpoint's enabled_events: the exact types plus the stripe-go
// types each prefix pattern matches, or just "*" when a catch-all or a
// fallback is registered (they want every event).
func (d *Dispatcher) EnabledEvents() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.all) > 0 || d.fallback != nil {
		return []string{"*"}
	}
	set := make(map[string]bool)
	for t := range d.exact {
		set[t] = true
	}
	for _, p := range d.prefixes {
		for _, t := range eventtypes.WithPrefix(p.prefix) {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Dispatch runs the callbacks for e and returns the first error, or a
// [*PanicError] if one panicked. An event that no callback handles (and no
// fallback) returns nil. The first call fixes the routing table: see
// [Dispatcher]. If a registration failed, Dispatch returns that error and
// runs nothing.
func (d *Dispatcher) Dispatch(ctx context.Context, e *Event) error {
	_, err := d.dispatch(ctx, e)
	return err
}

func (d *Dispatcher) dispatch(ctx context.Context, e *Event) (handled bool, err error) {
	d.start()
	if d.startErr != nil {
		return false, d.startErr
	}
	r := d.route(string(e.Type))
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	for _, fn := range r.fns {
		if err := fn(ctx, e); err != nil {
			return r.handled, err
		}
	}
	return r.handled, nil
}
