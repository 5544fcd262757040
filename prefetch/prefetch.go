// Package prefetch holds the messages a queue engine fetched ahead of its
// Receives, so that one request to the server brings many messages, and
// decides how many to fetch and when to give them back: a fetch asks for
// twice what was taken since the last one (and one per Receive waiting),
// nothing while no Receive takes, and what waited idle for a Receive, or
// too long, is handed back to the server for the other instances.
//
// The engines of this repository (jsqueue, amqpqueue) use it; like
// groupcommit it is public so that each engine module depends only on the
// core's public API, and so that an engine written outside the repository
// can use it too.
package prefetch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Idle is how long fetched messages wait for a Receive before Stale hands
// them back: a Worker that stopped, or is busy with long callbacks, leaves
// them to the other instances.
const Idle = time.Second

// ErrClosed is what Take returns once the Buffer is closed.
var ErrClosed = errors.New("prefetch: closed")

// Buffer holds fetched messages of type M, oldest first. Its zero value is
// not usable: see New. It is safe for concurrent use.
type Buffer[M any] struct {
	max   int
	ready chan struct{} // a message, an error or the close to take; cap 1
	wake  chan struct{} // a Receive waits or took: fetch; cap 1
	done  chan struct{} // closed by Close

	mu       sync.Mutex
	items    []item[M]
	err      error // a fetch's failure, for the next Take
	closed   bool
	waiters  int
	taken    int // since the last Want that asked for some
	lastTake time.Time
}

type item[M any] struct {
	m                 M
	fetched, extended time.Time
}

// New returns a Buffer of at most max messages.
func New[M any](max int) *Buffer[M] {
	return &Buffer[M]{max: max, ready: make(chan struct{}, 1), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Put adds a fetched message (after Close, Take never returns it: the
// caller hands back what Put returned false for).
func (b *Buffer[M]) Put(m M) bool {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.items = append(b.items, item[M]{m, now, now})
	signal(b.ready)
	return true
}

// Fail hands err to the next Take, when the buffer is empty: the fetch
// failed (the connection is down).
func (b *Buffer[M]) Fail(err error) {
	b.mu.Lock()
	b.err = err
	b.mu.Unlock()
	signal(b.ready)
}

// Take returns the oldest message, waiting until there is one, a fetch
// failed (its error), the Buffer is closed (ErrClosed) or ctx is done.
func (b *Buffer[M]) Take(ctx context.Context) (M, error) {
	var zero M
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		switch {
		case b.closed:
			return zero, ErrClosed
		case len(b.items) > 0:
			m := b.items[0].m
			b.items[0] = item[M]{}
			b.items = b.items[1:]
			if len(b.items) > 0 {
				signal(b.ready) // for the next Take waiting
			}
			b.taken++
			b.lastTake = time.Now()
			signal(b.wake)
			return m, nil
		case b.err != nil:
			err := b.err
			b.err = nil
			return zero, err
		}
		b.waiters++
		b.mu.Unlock()
		signal(b.wake)
		var err error
		select {
		case <-b.ready:
		case <-b.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		b.mu.Lock()
		b.waiters--
		if err != nil {
			return zero, err
		}
	}
}

// Want returns how many messages to fetch now: 0 while no Receive waits
// and none took within Idle, or the Buffer is full.
func (b *Buffer[M]) Want() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || (b.waiters == 0 && time.Since(b.lastTake) >= Idle) {
		return 0
	}
	n := min(max(2*b.taken, b.waiters, 1), b.max-len(b.items))
	if n <= 0 {
		return 0
	}
	b.taken = 0
	return n
}

// Wake is signalled when a Receive starts waiting or takes: Want may have
// changed.
func (b *Buffer[M]) Wake() <-chan struct{} { return b.wake }

// Due returns the messages that waited every since they were fetched or
// last returned by Due: those whose visibility to extend.
func (b *Buffer[M]) Due(every time.Duration) []M {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var due []M
	for i := range b.items {
		if it := &b.items[i]; now.Sub(it.extended) >= every {
			it.extended = now
			due = append(due, it.m)
		}
	}
	return due
}

// Stale removes and returns every message, to hand back, when none was
// taken within Idle and no Receive waits, or when the oldest was fetched
// longer than maxAge ago (0: no bound); otherwise nothing.
func (b *Buffer[M]) Stale(maxAge time.Duration) []M {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.items) == 0 {
		return nil
	}
	idle := b.waiters == 0 && now.Sub(b.lastTake) >= Idle
	old := maxAge > 0 && now.Sub(b.items[0].fetched) >= maxAge
	if !idle && !old {
		return nil
	}
	return b.drop()
}

// Close makes Take return ErrClosed and returns what no Take took.
func (b *Buffer[M]) Close() []M {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.done) // every Take waiting returns
	}
	return b.drop()
}

func (b *Buffer[M]) drop() []M {
	out := make([]M, len(b.items))
	for i, it := range b.items {
		out[i] = it.m
	}
	b.items = nil
	return out
}
