package stripewebhook

import (
	"errors"
	"sync/atomic"
)

// ErrOverloaded means the bodies of the deliveries in flight were at
// [WithMaxBytesInFlight]: the delivery was answered 503 with Retry-After
// before its body was read (the rest of a chunked one), and Stripe retries.
var ErrOverloaded = errors.New("stripewebhook: too many body bytes in flight")

// inFlight is the body bytes that deliveries being read or processed hold
// together, under a bound.
type inFlight struct {
	held atomic.Int64
	max  int64
}

// reserve takes n bytes of the budget, or reports that it cannot.
func (b *inFlight) reserve(n int64) bool {
	for {
		cur := b.held.Load()
		if cur+n > b.max {
			return false
		}
		if b.held.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// release gives n bytes back.
func (b *inFlight) release(n int64) { b.held.Add(-n) }

// reservation is one delivery's share of the budget, grown as its buffer
// grows.
type reservation struct {
	b    *inFlight
	held int64
}

// grow makes the reservation at least n bytes.
func (r *reservation) grow(n int64) bool {
	if n <= r.held {
		return true
	}
	if !r.b.reserve(n - r.held) {
		return false
	}
	r.held = n
	return true
}

// done gives the reservation back.
func (r *reservation) done() {
	r.b.release(r.held)
	r.held = 0
}
