package jsqueue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stripewebhook/stripewebhook/prefetch"
)

// prefetchMax bounds how many messages the Queue fetches ahead of the
// Receives (see package prefetch for how many it asks for: twice what was
// taken since the last fetch, so that a Worker that takes slowly holds
// few). A drain of 20 000 messages by Receive and Ack alone reached
// 0.54-0.64 of the engine's own consumer loop with 128, each pull
// request's round trip showing, and 0.74-0.90 with 512.
const prefetchMax = 512

// fetchWait is how long one pull request waits for messages on an empty
// stream before the next (messages that arrive meanwhile come at once).
const fetchWait = 5 * time.Second

// fetcher fetches for the Receives: one pull request for many messages,
// where a pull per Receive costs a round trip and a subscription each. A
// fetched message is delivered, its ack wait running: while it waits here
// the fetcher extends it, as the Worker extends what it holds, and what
// waited idle for a Receive it hands back (prefetch.Idle).
type fetcher struct {
	q    *Queue
	buf  *prefetch.Buffer[jetstream.Msg]
	ctx  context.Context // cancelled by close
	stop context.CancelFunc
	done chan struct{} // the pump and the keeper returned

	mu     sync.Mutex
	cancel context.CancelFunc // the pull request under way, or nil
}

func newFetcher(q *Queue) *fetcher {
	ctx, stop := context.WithCancel(context.Background())
	f := &fetcher{q: q, buf: prefetch.New[jetstream.Msg](prefetchMax), ctx: ctx, stop: stop, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(f.pump)
	wg.Go(f.keep)
	go func() { wg.Wait(); close(f.done) }()
	return f
}

// pump fetches what the buffer wants, when it wants it.
func (f *fetcher) pump() {
	failures := 0
	for f.ctx.Err() == nil {
		n := f.buf.Want()
		if n == 0 {
			select {
			case <-f.buf.Wake():
			case <-f.ctx.Done():
			}
			continue
		}
		err := f.fetch(n)
		if err == nil {
			failures = 0
			continue
		}
		f.buf.Fail(err)
		failures++
		select { // the connection is down, or the consumer gone: again, gently
		case <-f.ctx.Done():
		case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

// fetch makes one pull request for up to n messages and buffers them as
// they arrive.
func (f *fetcher) fetch(n int) error {
	ctx, cancel := context.WithTimeout(f.ctx, fetchWait)
	defer cancel()
	f.mu.Lock()
	f.cancel = cancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.cancel = nil
		f.mu.Unlock()
	}()
	batch, err := f.q.consumer.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return f.fetchErr(err)
	}
	for msg := range batch.Messages() {
		if !f.buf.Put(msg) {
			f.q.putBack(context.Background(), msg)
		}
	}
	return f.fetchErr(batch.Error())
}

// fetchErr is nil for what ends a pull request normally.
func (f *fetcher) fetchErr(err error) error {
	if err == nil || f.ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
		return nil
	}
	return err
}

// keep extends the ack wait of the messages that have waited here a third
// of it, and hands back what waited idle.
func (f *fetcher) keep() {
	every := max(f.q.ackWait/3, time.Millisecond)
	t := time.NewTicker(min(every, prefetch.Idle/4))
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		for _, msg := range f.buf.Due(every) {
			_ = msg.InProgress() // failed: it comes back after the ack wait
		}
		if back := f.buf.Stale(0); len(back) > 0 {
			f.mu.Lock()
			if f.cancel != nil {
				f.cancel() // or the pull under way takes them again
			}
			f.mu.Unlock()
			for _, msg := range back {
				f.q.putBack(f.ctx, msg)
			}
		}
	}
}

// close stops fetching and returns what was fetched and not taken.
func (f *fetcher) close() []jetstream.Msg {
	left := f.buf.Close()
	f.stop()
	<-f.done
	return left
}
