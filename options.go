package stripewebhook

import (
	"errors"
	"log/slog"
	"time"
)

// ErrInvalidOption means an option is out of range or can never be what
// was meant (it would drop every event, say). It is wrapped with the detail.
var ErrInvalidOption = errors.New("stripewebhook: invalid option")

// HandlerOption configures a [Handler]. Each constructor takes the options
// that apply to it, so that one that does not apply does not compile:
// [WithClock] serves a Handler, a [Verifier] and a [MemoryStore];
// [WithTolerance] a Handler and a Verifier; [WithLogger] a Handler and a
// MemoryStore. A [Worker] takes its settings from its Handler, and
// [WorkerOption]s of its own.
type HandlerOption interface{ applyHandler(*config) }

// VerifierOption configures a [Verifier]: [WithTolerance], [WithClock].
type VerifierOption interface{ applyVerifier(*verifierConfig) }

// MemoryStoreOption configures a [MemoryStore]: [WithClock], [WithLogger].
type MemoryStoreOption interface{ applyMemoryStore(*memoryConfig) }

// verifierConfig is what a Verifier is built from; a Handler's config
// holds one for its own.
type verifierConfig struct {
	tolerance time.Duration
	now       func() time.Time
}

// memoryConfig is what a MemoryStore is built from.
type memoryConfig struct {
	now    func() time.Time
	logger *slog.Logger
}

// ClockOption is [WithClock]'s option, which a [Handler], a [Verifier] and
// a [MemoryStore] take.
type ClockOption struct{ now func() time.Time }

func (o ClockOption) applyHandler(c *config) {
	if o.now != nil {
		c.now = o.now
	}
}

func (o ClockOption) applyVerifier(c *verifierConfig) {
	if o.now != nil {
		c.now = o.now
	}
}

func (o ClockOption) applyMemoryStore(c *memoryConfig) {
	if o.now != nil {
		c.now = o.now
	}
}

// ToleranceOption is [WithTolerance]'s option, which a [Handler] and a
// [Verifier] take.
type ToleranceOption struct{ d time.Duration }

func (o ToleranceOption) applyHandler(c *config)          { c.tolerance = o.d }
func (o ToleranceOption) applyVerifier(c *verifierConfig) { c.tolerance = o.d }

// LoggerOption is [WithLogger]'s option, which a [Handler] and a
// [MemoryStore] take.
type LoggerOption struct{ l *slog.Logger }

func (o LoggerOption) applyHandler(c *config)           { c.logger = o.l }
func (o LoggerOption) applyMemoryStore(c *memoryConfig) { c.logger = o.l }

// WithTolerance sets how far the signed timestamp may be from now, in
// either direction (default [DefaultTolerance]). Zero or negative is a
// configuration error ([ErrInvalidTolerance]), never "no check". Applies to
// a [Verifier] too.
func WithTolerance(d time.Duration) ToleranceOption { return ToleranceOption{d} }

// WithClock replaces time.Now, for tests. Applies to a [Verifier] and a
// [MemoryStore] too.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now} }

// WithLogger sets the structured logger (default slog.Default()). The
// handler logs event id, type, secret name, status, duration and outcome;
// never a secret, a signature or the body. Successes are logged at Debug;
// rejected deliveries at Warn, at most 10 lines per 10 s and then a summary
// by reason, a bad signature with a hint of its likely cause; failures at
// Error, with the stack of a panic; what Stripe's retry settles (409, a
// sender that left) at Info. Applies to a [MemoryStore] too.
func WithLogger(l *slog.Logger) LoggerOption { return LoggerOption{l} }
