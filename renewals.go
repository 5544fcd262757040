package stripewebhook

import (
	"context"
	"sync"
	"time"
)

// renewals keeps what a process holds alive for as long as it holds it:
// the claims and object locks of the runs in flight (renewed in the dedup
// store every third of the lease) and a Worker's deliveries (their
// visibility extended every third of the queue's timeout). It is the one
// implementation of "hold for longer than a lease" for every path, so that
// leases and visibility timeouts can be short, and a crashed process's
// events run again within them, while a callback runs for as long as it
// needs.
//
// Holding and dropping cost a map write under a mutex and no allocation
// (the synchronous hot path holds a claim for every event); one goroutine,
// started when something is held and gone when nothing is, renews what has
// been held for at least one interval.
type renewals[K comparable, V any] struct {
	every time.Duration
	renew func(ctx context.Context, k K, v V) error
	// lost is told of a renewal's failure; it returns whether to stop
	// renewing k (what k named is gone).
	lost func(k K, err error) bool

	mu      sync.Mutex
	held    map[K]renewal[V]
	gen     uint64 // ticks so far
	running bool
}

type renewal[V any] struct {
	v   V
	gen uint64 // the tick count when it was held
}

// hold starts renewing k (with v) until drop(k).
func (r *renewals[K, V]) hold(k K, v V) {
	r.mu.Lock()
	if r.held == nil {
		r.held = make(map[K]renewal[V])
	}
	r.held[k] = renewal[V]{v: v, gen: r.gen}
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		go r.loop()
	}
}

// drop stops renewing k.
func (r *renewals[K, V]) drop(k K) {
	r.mu.Lock()
	delete(r.held, k)
	r.mu.Unlock()
}

// loop renews, at each tick, what was held before the previous one (held
// for at least one interval), until nothing is held.
func (r *renewals[K, V]) loop() {
	t := time.NewTicker(r.every)
	defer t.Stop()
	type due struct {
		k K
		v V
	}
	var batch []due
	for range t.C {
		r.mu.Lock()
		if len(r.held) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.gen++
		batch = batch[:0]
		for k, h := range r.held {
			if h.gen+2 <= r.gen {
				batch = append(batch, due{k, h.v})
			}
		}
		r.mu.Unlock()
		for _, d := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), r.every)
			err := r.renew(ctx, d.k, d.v)
			cancel()
			if err != nil && r.lost(d.k, err) {
				r.mu.Lock()
				if h, ok := r.held[d.k]; ok && h.gen+2 <= r.gen { // not held again meanwhile
					delete(r.held, d.k)
				}
				r.mu.Unlock()
			}
		}
	}
}
