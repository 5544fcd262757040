// Package groupcommit runs concurrent calls in batches, for a queue
// engine's group commit: the calls that arrive while a batch is being
// processed go together in the next one, so that a burst costs one commit
// (one transaction, one network write) per batch rather than one per call,
// and a lone call is processed at once.
//
// The engines of this repository (jsqueue, rivqueue) use it for their
// Enqueue; it is public so that an engine written outside the repository
// can use it too, and so that each engine module depends only on the
// core's public API.
package groupcommit

import (
	"context"
	"sync"
)

// Batcher batches the items of concurrent Do calls. Its zero value is not
// usable: see New. It is safe for concurrent use, and keeps no goroutine
// once no call is waiting, so it needs no Close.
type Batcher[T any] struct {
	max     int
	process func(items []T, errs []error)

	mu      sync.Mutex
	pending []*call[T]
	running bool // a goroutine is draining pending
}

type call[T any] struct {
	item T
	done chan error
}

// New returns a Batcher that hands process at most max items at a time,
// one batch at a time; process sets errs[i] to the result of items[i]
// (errs comes zeroed, as long as items).
func New[T any](max int, process func(items []T, errs []error)) *Batcher[T] {
	return &Batcher[T]{max: max, process: process}
}

// Do processes item in the next batch and returns its result. When ctx is
// done first, Do returns ctx's error, and item may still be processed.
func (b *Batcher[T]) Do(ctx context.Context, item T) error {
	c := &call[T]{item: item, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		go b.drain()
	}
	b.mu.Unlock()
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain processes batches until no call is waiting.
func (b *Batcher[T]) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), b.max)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		b.mu.Unlock()
		items, errs := make([]T, n), make([]error, n)
		for i, c := range batch {
			items[i] = c.item
		}
		b.process(items, errs)
		for i, c := range batch {
			c.done <- errs[i]
		}
	}
}
