package amqpqueue

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stripewebhook/stripewebhook/prefetch"
)

// prefetchCount is the consumer's prefetch (basic.qos): how many messages
// the broker hands the Queue ahead of its Receives.
const prefetchCount = 64

// consumer is a basic.consume on the getting channel, whose deliveries
// wait in a prefetch buffer for the Receives: one stream of messages,
// where a basic.get per Receive costs a round trip each. What waited idle
// for a Receive (prefetch.Idle), or longer than the visibility timeout,
// is handed back (as Return does: no attempt spent) and the consumer
// cancelled, so that a Worker that stopped or is busy leaves its messages
// to the other instances; the next Receive starts another.
type consumer struct {
	q    *Queue
	ch   *amqp.Channel
	tag  string
	buf  *prefetch.Buffer[amqp.Delivery]
	done chan struct{} // the deliveries channel closed
	over sync.Once
}

var consumerSeq atomic.Uint64

// consuming returns the Queue's consumer, starting one on the getting
// channel when there is none (or its channel closed).
func (q *Queue) consuming(ctx context.Context) (*consumer, error) {
	_, get, err := q.channels(ctx)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := q.cons; c != nil && c.ch == get {
		return c, nil
	}
	if err := get.Qos(prefetchCount, 0, false); err != nil {
		return nil, err
	}
	tag := "stripewebhook-" + time.Now().UTC().Format("20060102T150405") + "-" + strconv.FormatUint(consumerSeq.Add(1), 10)
	deliveries, err := get.Consume(q.name, tag, false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	c := &consumer{q: q, ch: get, tag: tag, buf: prefetch.New[amqp.Delivery](prefetchCount), done: make(chan struct{})}
	q.cons = c
	go c.pump(deliveries)
	go c.keep()
	return c, nil
}

// pump buffers the deliveries until the consumer is cancelled or its
// channel closes.
func (c *consumer) pump(deliveries <-chan amqp.Delivery) {
	for msg := range deliveries {
		if !c.buf.Put(msg) {
			c.q.deliver(c.ch, msg).Return(context.Background())
		}
	}
	close(c.done)
	if c.ch.IsClosed() { // the broker put back what the channel held
		c.detach()
		c.buf.Close()
		return
	}
	c.handBack(context.Background(), nil) // cancelled, by handBack or the broker
}

// detach makes the next Receive start another consumer.
func (c *consumer) detach() {
	c.q.mu.Lock()
	if c.q.cons == c {
		c.q.cons = nil
	}
	c.q.mu.Unlock()
}

// keep hands back what waited idle or too long.
func (c *consumer) keep() {
	t := time.NewTicker(prefetch.Idle / 4)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if back := c.buf.Stale(c.q.ackWait); len(back) > 0 {
			c.handBack(context.Background(), back)
			return
		}
	}
}

// handBack cancels the consumer and returns back and whatever was still
// on its way: a new consumer starts with the next Receive.
func (c *consumer) handBack(ctx context.Context, back []amqp.Delivery) {
	c.over.Do(func() {
		c.detach()
		if err := c.ch.Cancel(c.tag, false); err == nil {
			select { // the deliveries in flight, then the channel's close
			case <-c.done:
			case <-time.After(5 * time.Second):
			}
		}
		back = append(back, c.buf.Close()...)
		for _, msg := range back {
			c.q.deliver(c.ch, msg).Return(ctx)
		}
	})
}
