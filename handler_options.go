package stripewebhook

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// The options that only a Handler takes, and the configuration they build
// (the options that several constructors take are in options.go).

// DefaultMaxBodyBytes is the default cap on a delivery's body. Real invoice
// events with many line items run to hundreds of KiB; a 64 KiB cap rejects
// them.
const DefaultMaxBodyBytes = 1 << 20

// DefaultReadTimeout bounds how long the handler waits for a delivery's
// body. Stripe sends it at once; a client that trickles it, or declares a
// length it never sends, is cut off after this.
const DefaultReadTimeout = 30 * time.Second

// handlerOption is an option that only a Handler takes.
type handlerOption func(*config)

func (o handlerOption) applyHandler(c *config) { o(c) }

// config is a Handler's configuration; a Worker shares its Handler's.
type config struct {
	verifierConfig
	maxBody          int64
	maxBodySet       bool // WithMaxBodyBytes was given
	readTimeout      time.Duration
	store            Store
	storeSet         bool
	dedupKey         func(*Event) string
	lease            time.Duration
	retention        time.Duration
	shortRetention   bool // WithShortRetention: below StripeRetryWindow on purpose
	failOpen         bool
	logger           *slog.Logger
	onError          func(r *http.Request, e *Event, err error)
	livemode         *bool
	accounts         map[string]bool
	strictAPIVersion bool
	observer         Observer
	queue            Queue
	lockKey          func(*Event) string // WithLockKey
	lockWait         time.Duration
	refetchStale     bool
	sources          *SourceFilter
	maxInFlight      int64
	destinations     map[string]bool // WithDestinations: nil, no bus event is trusted
	awsAccounts      map[string]bool // WithAWSAccounts
	badPin           string          // a pin that is not of its form, for check
}

// lockPrefix starts the store keys of the objects' locks.
const lockPrefix = "stripewebhook:object:"

// objectLock is the key of e's object's lock: WithLockKey's, or what e is
// about when it gives none.
func (c *config) objectLock(e *Event) string {
	if c.lockKey != nil {
		if k := c.lockKey(e); k != "" {
			return k
		}
	}
	return objectKey(e)
}

func newConfig(opts []HandlerOption) *config {
	c := &config{
		verifierConfig: verifierConfig{tolerance: DefaultTolerance, now: time.Now},
		maxBody:        DefaultMaxBodyBytes,
		readTimeout:    DefaultReadTimeout,
		lease:          DefaultLease,
		retention:      DefaultRetention,
		lockWait:       DefaultLockWait,
		maxInFlight:    DefaultMaxBytesInFlight,
	}
	for _, o := range opts {
		o.applyHandler(c)
	}
	return c
}

// prepare checks the options, fills in the defaults that depend on others
// (the logger, the in-memory store) and fixes d's routing table.
func (c *config) prepare(d *Dispatcher) error {
	if err := c.check(); err != nil {
		return err
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if err := c.fitQueue(); err != nil {
		return err
	}
	if !c.storeSet {
		c.store = NewMemoryStore(0, WithClock(c.now), WithLogger(c.logger))
	}
	d.start()
	if d.startErr != nil {
		return d.startErr
	}
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidOption, msg) }
	if _, ok := c.store.(StateStore); d.hasState && !ok {
		return bad("OnLatest callbacks need a dedup store that keeps state marks (a StateStore: MemoryStore, redisstore, pgstore); this one does not, or WithDedup(nil) turned it off")
	}
	if c.refetchStale && d.client == nil {
		return bad("WithRefetchStale fetches with the dispatcher's Stripe client: give it one with WithClient")
	}
	return nil
}

// check reports the options that are out of range, or that would silently
// drop every event.
func (c *config) check() error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidOption, msg) }
	switch {
	case c.maxBody <= 0:
		return bad("max body bytes must be positive")
	case c.maxInFlight < c.maxBody:
		return bad(fmt.Sprintf("max bytes in flight %d is below the max body bytes %d: the largest delivery could never be read", c.maxInFlight, c.maxBody))
	case c.readTimeout <= 0:
		return bad("read timeout must be positive")
	case c.lease <= 0:
		return bad("dedup lease must be positive")
	case c.retention <= 0:
		return bad("dedup retention must be positive")
	case c.retention < StripeRetryWindow && !c.shortRetention:
		return bad(fmt.Sprintf("dedup retention %v is shorter than Stripe's retry window (%v): a late retry would run again (WithShortRetention if that is meant)", c.retention, StripeRetryWindow))
	case c.lockWait <= 0:
		return bad("lock wait must be positive")
	case c.accounts != nil && len(c.accounts) == 0:
		return bad(`WithAccounts with no account would drop every event (use "" for the platform's own events)`)
	case c.destinations != nil && len(c.destinations) == 0:
		return bad("WithDestinations with no destination would refuse every event from a cloud bus")
	case c.awsAccounts != nil && len(c.awsAccounts) == 0:
		return bad("WithAWSAccounts with no account would refuse every event from EventBridge")
	case c.awsAccounts != nil && c.destinations == nil:
		return bad("WithAWSAccounts without WithDestinations: the destinations must be pinned too")
	case c.badPin != "":
		return bad(c.badPin)
	}
	return nil
}

// fitQueue holds the body cap to what the queue can hold (see WithQueue).
func (c *config) fitQueue() error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidOption, msg) }
	if l, ok := c.queue.(interface{ MaxPayload() int64 }); ok {
		switch limit := l.MaxPayload(); {
		case limit <= 0 || c.maxBody <= limit:
		case c.maxBodySet:
			return bad(fmt.Sprintf("max body bytes %d is more than the queue can hold (%d bytes: its server's message limit, less its headers): "+
				"raise the server's limit (nats-server: max_payload) or lower WithMaxBodyBytes", c.maxBody, limit))
		default:
			c.logger.Warn("stripewebhook: the queue cannot hold a body of the default cap; lowered to what it can (a longer one gets 413): "+
				"raise the server's message limit (nats-server: max_payload: 2MB) to take bodies up to the default",
				slog.Int64("max_body_bytes", limit), slog.Int64("default", c.maxBody))
			c.maxBody = limit
			c.maxInFlight = max(c.maxInFlight, limit)
		}
	}
	return nil
}

// WithLockKey groups events under one object lock (and, in the
// asynchronous mode, one [Message.Key]): events with one key run one at a
// time. The default is data.object's id (a thin event's related object).
// [SubscriptionKey] groups a subscription's invoices, checkout sessions and
// the subscription itself. An empty key falls back to the default. The
// state guard's marks stay per object whatever the grouping.
func WithLockKey(key func(*Event) string) HandlerOption {
	return handlerOption(func(c *config) { c.lockKey = key })
}

// WithLockWait sets how long a synchronous delivery waits for its object's
// lock, held by another delivery about the same object, before answering
// 409 so that Stripe retries (default [DefaultLockWait]). A Worker does not
// wait in a slot: the event waits in line, its attempts untouched (see
// [Worker.Run]).
func WithLockWait(d time.Duration) HandlerOption {
	return handlerOption(func(c *config) { c.lockWait = d })
}

// WithRefetchStale makes [OnLatest] callbacks run, for a stale event or one
// of the same second as the state applied, with the object as it is now,
// fetched through the dispatcher's client ([WithClient]; [Refetch]) instead
// of being skipped: one API request, only where the order is in doubt.
// Without a client it is a configuration error.
func WithRefetchStale() HandlerOption {
	return handlerOption(func(c *config) { c.refetchStale = true })
}

// DefaultMaxBytesInFlight bounds the body bytes that all deliveries being
// read or processed hold together (see [WithMaxBytesInFlight]).
const DefaultMaxBytesInFlight = 64 << 20

// WithMaxBytesInFlight bounds the body bytes that all deliveries together
// hold while they are read and processed (default
// [DefaultMaxBytesInFlight]): a delivery that would pass it is answered 503
// with Retry-After before its body is read (a chunked one as its body
// grows), and Stripe retries it. It bounds what a flood of large or slow
// bodies can make the server hold. It must be at least [WithMaxBodyBytes].
func WithMaxBytesInFlight(n int64) HandlerOption {
	return handlerOption(func(c *config) { c.maxInFlight = n })
}

// WithSourceFilter refuses, with 403 and before reading the body,
// deliveries that do not come from an address f allows (Stripe's
// published ones: [StripeWebhookIPs]). Off by default: turn it on when the
// endpoint is reachable from the internet and nothing in front of it
// filters already. `stripe listen` forwards from localhost, which the
// filter must then allow.
func WithSourceFilter(f *SourceFilter) HandlerOption {
	return handlerOption(func(c *config) { c.sources = f })
}

// WithMaxBodyBytes caps the body (default [DefaultMaxBodyBytes]); a longer
// one gets 413.
func WithMaxBodyBytes(n int64) HandlerOption {
	return handlerOption(func(c *config) { c.maxBody, c.maxBodySet = n, true })
}

// WithReadTimeout bounds the time to read a delivery's body (default
// [DefaultReadTimeout]), through [http.ResponseController], so that a
// handler mounted on a server without a ReadTimeout cannot be held open by
// a slow client. A server's ReadTimeout that is shorter is left in force.
// Zero or negative is a configuration error.
func WithReadTimeout(d time.Duration) HandlerOption {
	return handlerOption(func(c *config) { c.readTimeout = d })
}

// WithDedup sets the dedup store. The default is an in-process
// [MemoryStore]; replicas need a shared one. nil turns dedup off, so that
// Stripe's duplicate deliveries run the callbacks again.
func WithDedup(s Store) HandlerOption {
	return handlerOption(func(c *config) { c.store, c.storeSet = s, true })
}

// WithDedupKey derives the dedup key from the event instead of its ID. A
// key that ignores the event ID (data.object's id and the type, say) also
// drops distinct events about the same object. An empty key falls back to
// the event ID, so that one missing field cannot make every event a
// duplicate of the first.
func WithDedupKey(key func(*Event) string) HandlerOption {
	return handlerOption(func(c *config) { c.dedupKey = key })
}

// WithLease sets how long a claim holds off other deliveries of the same
// event (default [DefaultLease]). Make it longer than the slowest callback.
func WithLease(d time.Duration) HandlerOption { return handlerOption(func(c *config) { c.lease = d }) }

// WithRetention sets how long completed events are remembered (default
// [DefaultRetention]). It must be at least [StripeRetryWindow]: Stripe
// retries an event for up to three days, and a retry that comes after its
// event was forgotten runs the callbacks again. A shorter one is a
// configuration error; [WithShortRetention] says it is meant (a test, or
// callbacks that are idempotent anyway).
func WithRetention(d time.Duration) HandlerOption {
	return handlerOption(func(c *config) { c.retention, c.shortRetention = d, false })
}

// WithShortRetention is [WithRetention] for a retention shorter than
// [StripeRetryWindow], on purpose: Stripe's late retries of an event
// forgotten by then run its callbacks again.
func WithShortRetention(d time.Duration) HandlerOption {
	return handlerOption(func(c *config) { c.retention, c.shortRetention = d, true })
}

// WithDedupFailOpen processes events without dedup while the store cannot
// be reached, instead of answering 503. It keeps events flowing during a
// store outage at the cost of running a duplicate delivery twice.
func WithDedupFailOpen() HandlerOption { return handlerOption(func(c *config) { c.failOpen = true }) }

// WithErrorHook calls fn for every delivery that did not get a 2xx (an
// [Observer] sees every delivery, with durations and outcomes), with the
// request (nil for [Handler.Handle]) and the event if it was parsed (else
// nil), before the response is complete. fn must be safe for concurrent use
// and must not keep the event (see [Event]).
func WithErrorHook(fn func(r *http.Request, e *Event, err error)) HandlerOption {
	return handlerOption(func(c *config) { c.onError = fn })
}

// WithLivemode acknowledges (200) without dispatching the events whose
// livemode differs: a Connect platform's live endpoint also receives the
// test-mode events of its connected accounts.
func WithLivemode(live bool) HandlerOption {
	return handlerOption(func(c *config) { c.livemode = &live })
}

// WithDestinations names the Stripe event destinations (ed_…) whose events
// the Handler takes from a cloud bus (Amazon EventBridge, Azure Event
// Grid): such an event carries no Stripe signature, so where it comes from
// is its trust. [Handler.Deliver] refuses an event whose [Origin] names
// another destination, or none, with an [*OriginError] (403), and nothing
// runs; without this option it refuses every bus event, and the cloud
// ways in fail when built ([Handler.TrustsBus]). A Handler with it needs
// no secret when it takes no signed deliveries: NewHandler(d, nil,
// WithDestinations(…)), whose ServeHTTP then answers 500 (ErrNoSecret).
func WithDestinations(ids ...string) HandlerOption {
	return handlerOption(func(c *config) {
		c.destinations = make(map[string]bool, len(ids))
		for _, id := range ids {
			if !isDestinationID(id) && c.badPin == "" {
				c.badPin = fmt.Sprintf("WithDestinations: %q is not an event destination id (ed_…)", id)
			}
			c.destinations[id] = true
		}
	})
}

// WithAWSAccounts also pins the AWS accounts (12 digits) whose EventBridge
// events the Handler takes, with [WithDestinations]: an event whose
// envelope names another account is refused (403).
func WithAWSAccounts(ids ...string) HandlerOption {
	return handlerOption(func(c *config) {
		c.awsAccounts = make(map[string]bool, len(ids))
		for _, id := range ids {
			if !awsAccountID.MatchString(id) && c.badPin == "" {
				c.badPin = fmt.Sprintf("WithAWSAccounts: %q is not an AWS account id (12 digits)", id)
			}
			c.awsAccounts[id] = true
		}
	})
}

// WithAccounts acknowledges (200) without dispatching the events whose
// account is not one of ids. The empty string stands for the platform's
// own events, which have no account. No id at all is a configuration
// error: it would drop every event.
func WithAccounts(ids ...string) HandlerOption {
	return handlerOption(func(c *config) {
		c.accounts = make(map[string]bool, len(ids))
		for _, id := range ids {
			c.accounts[id] = true
		}
	})
}

// WithStrictAPIVersion fails (500, so Stripe retries once the code is
// upgraded) the events whose API version is on another release train than
// stripe-go v82's stripe.APIVersion and that would run a callback, since
// their typed objects may decode wrongly. Events that no callback handles
// are acknowledged whatever their version. Without it such events are
// processed and the mismatch logged (once per version).
func WithStrictAPIVersion() HandlerOption {
	return handlerOption(func(c *config) { c.strictAPIVersion = true })
}

// WithObserver sets an [Observer] of every delivery and run.
func WithObserver(o Observer) HandlerOption { return handlerOption(func(c *config) { c.observer = o }) }

// WithQueue turns on the asynchronous mode: a delivery that a callback
// would handle is answered 200 once q has durably accepted it (503 when it
// cannot), and a [Worker] on the same queue runs the callbacks. Events that
// nothing would handle, or that are filtered out, are acknowledged without
// being queued.
//
// A queue whose server bounds a message (jsqueue: nats-server's
// max_payload) says so with a MaxPayload() int64 method: a body cap above
// it would answer 503 for ever to a delivery the queue can never hold, so
// NewHandler fails when WithMaxBodyBytes asks for more, and lowers the
// default cap to fit, with a warning that says what to change.
func WithQueue(q Queue) HandlerOption { return handlerOption(func(c *config) { c.queue = q }) }
