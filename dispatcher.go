package stripewebhook

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stripe/stripe-go/v82"

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
	// ErrNoCallbacks means a dispatcher given to [NewHandler] has no
	// callback at all: every event would be acknowledged and dropped.
	ErrNoCallbacks = errors.New("stripewebhook: dispatcher has no callback; every event would be acknowledged and dropped")
)

// CallbackError is what [Dispatcher.Dispatch] returns when a callback
// failed: it wraps the callback's error (or a [*PanicError]), which stays
// reachable with errors.Is and errors.As. Whatever it wraps, the handler
// answers 500 so that Stripe retries: a callback that returns, say, a
// signature error of its own is still the application's failure, not a
// bad delivery.
type CallbackError struct {
	Type string // the event's type
	Err  error
}

func (e *CallbackError) Error() string {
	return "stripewebhook: callback for " + e.Type + " failed: " + e.Err.Error()
}

func (e *CallbackError) Unwrap() error { return e.Err }

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
	client       *stripe.Client // for thin events' fetches
	allowUnknown bool
	allowed      map[string]bool // types newer than stripe-go, allowed one by one

	mu       sync.Mutex // guards registration
	started  atomic.Bool
	exact    map[string][]callback
	prefixes []prefixRoute
	all      []callback
	fallback Callback
	err      error
	hasState bool // an OnLatest callback is registered

	// Set by start, read-only afterwards.
	routes   map[string]route // every known or registered type
	startErr error            // the registration errors, as of start
}

type prefixRoute struct {
	prefix string // "invoice." for "invoice.*"
	fn     callback
}

// callback is a registered Callback: an action, or a state sync
// ([OnLatest]) that the handler's state guard keeps from stale snapshots.
type callback struct {
	fn    Callback
	state bool
}

type route struct {
	fns     []callback
	handled bool // an exact or prefix callback matched
	state   bool // one of fns is a state callback
}

// DispatcherOption configures a [Dispatcher].
type DispatcherOption func(*Dispatcher)

// AllowTypes declares event types that stripe-go v82 does not know (types
// newer than the library), so that they can be registered while every
// other pattern is still checked for typos.
func AllowTypes(types ...string) DispatcherOption {
	return func(d *Dispatcher) {
		if d.allowed == nil {
			d.allowed = make(map[string]bool)
		}
		for _, t := range types {
			d.allowed[t] = true
		}
	}
}

// AllowUnknownTypes accepts patterns for any event type, including those
// that stripe-go v82 does not declare. It turns off the typo check for every
// pattern; prefer [AllowTypes], which allows the named ones only.
func AllowUnknownTypes() DispatcherOption {
	return func(d *Dispatcher) { d.allowUnknown = true }
}

// NewDispatcher returns an empty Dispatcher.
func NewDispatcher(opts ...DispatcherOption) *Dispatcher {
	d := &Dispatcher{exact: make(map[string][]callback)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// HandleFunc registers fn for pattern: an event type ("invoice.paid"), a
// prefix pattern ("customer.subscription.*") or "*" for every event.
// Callbacks for one pattern run in registration order.
func (d *Dispatcher) HandleFunc(pattern string, fn Callback) error {
	return d.add(pattern, callback{fn: fn})
}

// add registers fn for pattern unless the routing table is fixed.
func (d *Dispatcher) add(pattern string, fn callback) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started.Load() {
		return ErrDispatcherStarted
	}
	return d.record(d.register(pattern, fn))
}

// On registers a typed callback: fn receives data.object decoded as a *T,
// such as *stripe.Invoice for "invoice.paid", decoded once per event. If T
// is a stripe-go type and an event type the pattern matches is known to
// carry another object (a *stripe.Invoice for
// "customer.subscription.updated"), the registration fails with
// [ErrObjectMismatch]; for the types whose object is not known ahead (newer
// or polymorphic ones), a mismatch fails the delivery instead.
func On[T any](d *Dispatcher, pattern string, fn func(ctx context.Context, e *Event, obj *T) error) error {
	if err := checkRegistration(pattern, reflect.TypeFor[T]()); err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.record(err)
	}
	return d.HandleFunc(pattern, func(ctx context.Context, e *Event) error {
		obj, err := Decode[T](e)
		if err != nil {
			return err
		}
		return fn(ctx, e, obj)
	})
}

// OnPrevious is On with data.previous_attributes too: prev holds the
// values the fields had before the change, decoded into the same type (nil
// for events without previous_attributes, such as *.created).
func OnPrevious[T any](d *Dispatcher, pattern string, fn func(ctx context.Context, e *Event, obj, prev *T) error) error {
	return On(d, pattern, func(ctx context.Context, e *Event, obj *T) error {
		prev, err := DecodePrevious[T](e)
		if err != nil {
			return err
		}
		return fn(ctx, e, obj, prev)
	})
}

// checkRegistration reports the event types that pattern matches whose
// data.object is known to be another stripe-go type than t.
func checkRegistration(pattern string, t reflect.Type) error {
	var types []string
	switch {
	case pattern == "*":
		types = append(eventtypes.Known[:], eventtypes.Thin[:]...)
	case strings.HasSuffix(pattern, ".*"):
		types = eventtypes.WithPrefix(pattern[:len(pattern)-1])
	default:
		types = []string{pattern}
	}
	stripeType := t.PkgPath() == stripePkg && !polymorphicWrapper(t.Name())
	var wrong []string
	for _, et := range types {
		if _, thin := eventtypes.ThinEvents[et]; thin {
			wrong = append(wrong, et+" is a thin event, with no data.object (see OnThin)")
		} else if obj, ok := eventtypes.Objects[et]; ok && stripeType && obj != t.Name() {
			wrong = append(wrong, et+" carries a *stripe."+obj)
		}
	}
	switch len(wrong) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: %q: %s, the callback takes a *%s", ErrObjectMismatch, pattern, wrong[0], t)
	}
	return fmt.Errorf("%w: %q: %s and %d more, the callback takes a *%s", ErrObjectMismatch, pattern, wrong[0], len(wrong)-1, t)
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

func (d *Dispatcher) register(pattern string, fn callback) (err error) {
	if fn.fn == nil {
		return fmt.Errorf("%w: nil callback for %q", ErrInvalidPattern, pattern)
	}
	defer func() { d.hasState = d.hasState || (err == nil && fn.state) }()
	switch {
	case pattern == "*":
		d.all = append(d.all, fn)
	case strings.HasSuffix(pattern, ".*"):
		prefix := pattern[:len(pattern)-1]
		if prefix == "." || strings.Contains(prefix, "*") || strings.Contains(prefix, "..") {
			return fmt.Errorf("%w: %q", ErrInvalidPattern, pattern)
		}
		if !d.allowUnknown && len(d.withPrefix(prefix)) == 0 {
			return fmt.Errorf("%w: no stripe-go event type matches %q", ErrUnknownEventType, pattern)
		}
		d.prefixes = append(d.prefixes, prefixRoute{prefix: prefix, fn: fn})
	case pattern == "" || strings.ContainsAny(pattern, "* \t"):
		return fmt.Errorf("%w: %q", ErrInvalidPattern, pattern)
	default:
		if !d.allowUnknown && !eventtypes.IsKnown(pattern) && !d.allowed[pattern] {
			return fmt.Errorf("%w: %q (a typo? AllowTypes accepts types newer than stripe-go)", ErrUnknownEventType, pattern)
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
	routes := make(map[string]route, len(eventtypes.Known)+len(d.exact)+len(d.allowed))
	for _, t := range eventtypes.Known {
		routes[t] = d.resolve(t)
	}
	for _, t := range eventtypes.Thin {
		routes[t] = d.resolve(t)
	}
	for t := range d.allowed {
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
		r.fns = append(r.fns, callback{fn: d.fallback})
	}
	for _, fn := range r.fns {
		r.state = r.state || fn.state
	}
	return r
}

// withPrefix returns the known and allowed types that start with prefix.
func (d *Dispatcher) withPrefix(prefix string) []string {
	out := eventtypes.WithPrefix(prefix)
	for t := range d.allowed {
		if strings.HasPrefix(t, prefix) && !eventtypes.IsKnown(t) {
			out = append(out, t)
		}
	}
	return out
}

// empty reports whether nothing at all is registered. Called after start.
func (d *Dispatcher) empty() bool {
	return len(d.exact) == 0 && len(d.prefixes) == 0 && len(d.all) == 0 && d.fallback == nil
}

// Handles reports whether an exact or prefix callback is registered for
// the event type. Like Dispatch, it fixes the routing table.
func (d *Dispatcher) Handles(eventType string) bool {
	d.start()
	return d.route(eventType).handled
}

// route returns the callbacks for an event type. Called after start.
func (d *Dispatcher) route(t string) route {
	if r, ok := d.routes[t]; ok {
		return r
	}
	return d.resolve(t)
}

// EnabledEvents returns the event types that exact and prefix callbacks
// handle, sorted, for a webhook endpoint's enabled_events: the exact types
// plus the known types each prefix pattern matches. A catch-all or a
// fallback adds nothing here (see [Dispatcher.CatchAll]): an application
// that logs every event can still compute the types it handles.
func (d *Dispatcher) EnabledEvents() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	set := make(map[string]bool)
	for t := range d.exact {
		set[t] = true
	}
	for _, p := range d.prefixes {
		for _, t := range d.withPrefix(p.prefix) {
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

// CatchAll reports whether a catch-all ("*") callback or a fallback is
// registered: such a dispatcher wants every event ("*" in enabled_events),
// beyond the types [Dispatcher.EnabledEvents] lists.
func (d *Dispatcher) CatchAll() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.all) > 0 || d.fallback != nil
}

// Dispatch runs the callbacks for e and returns the first error, as a
// [*CallbackError] (wrapping a [*PanicError] if one panicked). An event that
// no callback handles (and no fallback) returns nil. The first call fixes
// the routing table: see [Dispatcher]. If a registration failed, Dispatch
// returns that error and runs nothing.
func (d *Dispatcher) Dispatch(ctx context.Context, e *Event) error {
	d.start()
	if d.startErr != nil {
		return d.startErr
	}
	_, err := d.run(ctx, e, d.route(string(e.Type)))
	return err
}

// run runs r's callbacks for e.
func (d *Dispatcher) run(ctx context.Context, e *Event, r route) (outcome Outcome, err error) {
	switch {
	case r.handled:
		outcome = OutcomeHandled
	case len(r.fns) > 0:
		outcome = OutcomeCatchAll
	default:
		return OutcomeUnhandled, nil
	}
	if e.client == nil {
		e.client = d.client
	}
	defer func() {
		if v := recover(); v != nil {
			err = &CallbackError{Type: string(e.Type), Err: &PanicError{Value: v, Stack: debug.Stack()}}
		}
	}()
	for _, fn := range r.fns {
		if fn.state && e.guard == guardStale {
			outcome = OutcomeStale
			continue
		}
		if err := fn.fn(ctx, e); err != nil {
			return outcome, &CallbackError{Type: string(e.Type), Err: err}
		}
	}
	return outcome, nil
}
