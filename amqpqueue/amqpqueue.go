// Package amqpqueue is a stripewebhook.Queue on RabbitMQ, through
// github.com/rabbitmq/amqp091-go, for the asynchronous mode: the handler's
// 200 follows the broker's publisher confirm of a persistent message in a
// quorum queue, and workers take events from a consumer.
//
//	q, err := amqpqueue.New(ctx, amqpqueue.Dial("amqp://guest:guest@127.0.0.1:5672/"))
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
//	w, err := stripewebhook.NewWorker(h) // the handler's queue and store
//	go w.Run(ctx)
//	defer q.Close(ctx)
//
// Layout, all durable, for a queue named N: the quorum queue N holds the
// events; the classic queue N.dead holds the dead letters; a retry waits in
// N.delay.<ms> (a classic queue whose messages expire after ms, power-of-two
// buckets, eight per doubling, into N) and comes back with its attempt count
// in a header.
//
// RabbitMQ has no visibility timeout of its own (an unsettled message comes
// back only when its channel closes): the Queue puts an event it handed to a
// worker back after the visibility timeout, and the broker does when the
// process dies.
//
// amqp091-go's connection does not reconnect, and the Queue must survive a
// broker restart: so New takes a [Dialer], how to connect, rather than a
// connection. [Dial] is the usual one; a Dialer of your own sets TLS, a
// vhost, credentials from a vault. The Queue owns the connections it dials,
// dials again after an outage, and closes them in Close.
//
// Two limits of RabbitMQ show: a delivery's EnqueuedAt is to the second
// (AMQP's timestamp), and a message published while its queue is being
// deleted by an operator is confirmed and dropped (do not delete N while the
// application runs).
package amqpqueue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/prefetch"
)

// Defaults.
const (
	DefaultName = "stripewebhook"
	// DefaultVisibilityTimeout is short because the Worker extends the
	// visibility of every event it holds each third of it: a killed
	// worker's events run again within it (or sooner: the broker puts them
	// back when the connection drops), while a callback runs for as long as
	// it needs, up to RabbitMQ's consumer_timeout (30 min by default), past
	// which the broker closes the channel and puts the event back.
	DefaultVisibilityTimeout = 30 * time.Second
)

// Headers of the queued messages.
const (
	hdrKey      = "stripewebhook-key"
	hdrSecret   = "stripewebhook-secret"
	hdrBus      = "stripewebhook-bus"      // the cloud bus whose envelope the body is, if any
	hdrAttempts = "stripewebhook-attempts" // attempts already made, before a delayed retry
	hdrReason   = "stripewebhook-reason"
	hdrAt       = "stripewebhook-dead-at"
)

// Queue is a stripewebhook.Queue on RabbitMQ. It is safe for concurrent use.
type Queue struct {
	dial    Dialer
	name    string
	ackWait time.Duration

	mu       sync.Mutex
	closed   bool
	conn     *amqp.Connection
	pub      *amqp.Channel // confirm mode: Enqueue, retries, dead letters
	get      *amqp.Channel // the consumer, and the acks of what it got
	cons     *consumer     // on get, or nil until a Receive
	declared map[string]bool

	pubMu sync.Mutex // one publish at a time on pub (their confirms are awaited apart)
}

var _ stripewebhook.Queue = (*Queue)(nil)

// Option configures a Queue.
type Option func(*config)

type config struct {
	name    string
	ackWait time.Duration
}

// WithName replaces DefaultName, to share a broker between applications.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithVisibilityTimeout sets how long a received event may stay unsettled,
// unextended, before it is put back for another worker (default
// DefaultVisibilityTimeout): the Worker extends the events it holds each
// third of it.
func WithVisibilityTimeout(d time.Duration) Option { return func(c *config) { c.ackWait = d } }

// Dialer opens a connection to the broker, within ctx. Its errors must not
// hold a password: [Dial]'s show the URL redacted.
type Dialer func(ctx context.Context) (*amqp.Connection, error)

// Dial returns the Dialer of the broker at url
// (amqp://user:password@host:port/vhost, or amqps://), with amqp091-go's
// defaults and the TCP connection bounded by ctx and 5 seconds.
func Dial(url string) Dialer {
	return func(ctx context.Context) (*amqp.Connection, error) {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: dialer(ctx)})
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", redacted(url), err)
		}
		return conn, nil
	}
}

// New connects through dial, declares the queues, and returns the Queue.
// Close it on shutdown. A nil dial or an option out of range is an error
// matching [stripewebhook.ErrInvalidOption].
func New(ctx context.Context, dial Dialer, opts ...Option) (*Queue, error) {
	c := config{name: DefaultName, ackWait: DefaultVisibilityTimeout}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case dial == nil:
		return nil, fmt.Errorf("%w: amqpqueue.New: nil Dialer", stripewebhook.ErrInvalidOption)
	case c.name == "":
		return nil, fmt.Errorf("%w: amqpqueue.WithName: empty name", stripewebhook.ErrInvalidOption)
	case c.ackWait <= 0:
		return nil, fmt.Errorf("%w: amqpqueue.WithVisibilityTimeout(%v): must be positive", stripewebhook.ErrInvalidOption, c.ackWait)
	}
	q := &Queue{dial: dial, name: c.name, ackWait: c.ackWait, declared: map[string]bool{}}
	if _, _, err := q.channels(ctx); err != nil {
		return nil, err
	}
	return q, nil
}

// ErrClosed is returned once the Queue is closed.
var ErrClosed = errors.New("amqpqueue: closed")

// Close closes the connection: the broker puts back what was received and
// not settled. The Queue is not used after it.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	c := q.cons
	q.mu.Unlock()
	if c != nil { // what the consumer holds goes back with its attempts
		c.handBack(ctx, nil)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.conn == nil {
		return nil
	}
	err := q.conn.Close()
	q.conn = nil
	return err
}

// maxDelay bounds the delay buckets (2^31 ms, 24 days): Stripe stops
// retrying after three.
const maxDelayShift = 31

// Delete deletes the queue's RabbitMQ queues — events, dead letters and
// delays, with what they hold — and closes it: for tests and teardown.
func (q *Queue) Delete(ctx context.Context) error {
	ch, err := q.sideChannel(ctx)
	if err != nil {
		return fmt.Errorf("amqpqueue: delete: %w", err)
	}
	names := []string{q.name, q.name + ".dead"}
	last := time.Duration(0)
	for k := range maxDelayShift*bucketsPerDoubling + 1 {
		if b := bucketAt(k); b != last {
			names, last = append(names, q.delayName(b)), b
		}
	}
	for _, name := range names {
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			q.Close(ctx)
			return fmt.Errorf("amqpqueue: delete %s: %w", name, err)
		}
	}
	return q.Close(ctx)
}

// channels returns the publishing and the getting channel: a channel the
// broker closed (after a channel error) is opened again, and a lost
// connection is dialled again, with the queues declared.
func (q *Queue) channels(ctx context.Context) (pub, get *amqp.Channel, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, nil, ErrClosed
	}
	if q.conn != nil && !q.conn.IsClosed() {
		if q.pub.IsClosed() {
			q.pub, err = openPublisher(q.conn)
		}
		if err == nil && q.get.IsClosed() {
			q.get, err = q.conn.Channel()
		}
		if err == nil {
			return q.pub, q.get, nil
		}
	}
	if q.conn != nil {
		q.conn.Close()
		q.conn = nil
	}
	conn, err := q.dial(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("amqpqueue: %w", err)
	}
	if pub, get, err = q.setUp(conn); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("amqpqueue: %w", err)
	}
	q.conn, q.pub, q.get, q.declared = conn, pub, get, map[string]bool{}
	return pub, get, nil
}

// sideChannel opens a channel of its own on the connection, for work whose
// errors or unacknowledged messages must not touch the shared channels.
func (q *Queue) sideChannel(ctx context.Context) (*amqp.Channel, error) {
	if _, _, err := q.channels(ctx); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil {
		return nil, ErrClosed
	}
	return q.conn.Channel()
}

// openPublisher opens a channel in confirm mode.
func openPublisher(conn *amqp.Connection) (*amqp.Channel, error) {
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	return ch, err
}

// dialer bounds the dial by ctx and 5 seconds.
func dialer(ctx context.Context) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func (q *Queue) setUp(conn *amqp.Connection) (pub, get *amqp.Channel, err error) {
	if pub, err = openPublisher(conn); err != nil {
		return nil, nil, err
	}
	if _, err = pub.QueueDeclare(q.name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return nil, nil, fmt.Errorf("queue %s: %w", q.name, err)
	}
	if _, err = pub.QueueDeclare(q.name+".dead", true, false, false, false, nil); err != nil {
		return nil, nil, fmt.Errorf("queue %s.dead: %w", q.name, err)
	}
	if get, err = conn.Channel(); err != nil {
		return nil, nil, err
	}
	return pub, get, nil
}

// publish sends msg to the queue named key and waits for the broker's
// confirm: the message is then stored.
func (q *Queue) publish(ctx context.Context, key string, msg amqp.Publishing) error {
	pub, _, err := q.channels(ctx)
	if err != nil {
		return err
	}
	msg.DeliveryMode = amqp.Persistent
	q.pubMu.Lock()
	c, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", key, true, false, msg)
	q.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("amqpqueue: publish: %w", err)
	}
	ok, err := c.WaitContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("amqpqueue: publish: %w", err)
	case !ok:
		return errors.New("amqpqueue: publish: the broker refused the message (nack)")
	}
	return nil
}

// Enqueue publishes m as a persistent message and waits for the broker's
// confirm.
func (q *Queue) Enqueue(ctx context.Context, m stripewebhook.Message) error {
	err := q.publish(ctx, q.name, amqp.Publishing{
		MessageId: m.ID, Timestamp: time.Now(), ContentType: "application/json", Body: m.Payload,
		Headers: headersOf(m),
	})
	if err != nil {
		return fmt.Errorf("%w (event %s)", err, m.ID)
	}
	return nil
}

// Receive waits for the next event.
func (q *Queue) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	for {
		c, err := q.consuming(ctx)
		if err != nil {
			return nil, fmt.Errorf("amqpqueue: receive: %w", err)
		}
		msg, err := c.buf.Take(ctx)
		switch {
		case err == nil:
			return q.deliver(c.ch, msg), nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, prefetch.ErrClosed):
			continue // handed back, or its channel closed: another consumer
		default:
			return nil, fmt.Errorf("amqpqueue: receive: %w", err)
		}
	}
}

func (q *Queue) deliver(ch *amqp.Channel, msg amqp.Delivery) *delivery {
	attempts, _ := msg.Headers[hdrAttempts].(int32)
	redelivered, _ := msg.Headers["x-delivery-count"].(int64) // quorum queues count the returns
	d := &delivery{q: q, ch: ch, msg: msg, attempt: int(attempts) + int(redelivered) + 1}
	d.mu.Lock() // the timer's settle must see it set
	d.timer = time.AfterFunc(q.ackWait, func() { d.settle(func() error { return ch.Nack(msg.DeliveryTag, false, true) }) })
	d.mu.Unlock()
	return d
}

type delivery struct {
	q       *Queue
	ch      *amqp.Channel
	msg     amqp.Delivery
	attempt int
	timer   *time.Timer

	mu      sync.Mutex
	settled bool
}

// errExpired is what settling a delivery returns after its ack wait.
var errExpired = errors.New("amqpqueue: the ack wait passed; the event was put back for another worker")

// settle runs fn once, unless the delivery was settled or put back.
func (d *delivery) settle(fn func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return errExpired
	}
	d.settled = true
	d.timer.Stop()
	return fn()
}

func messageOf(msg amqp.Delivery) stripewebhook.Message {
	key, _ := msg.Headers[hdrKey].(string)
	secret, _ := msg.Headers[hdrSecret].(string)
	bus, _ := msg.Headers[hdrBus].(string)
	return stripewebhook.Message{ID: msg.MessageId, Key: key, Secret: secret, Payload: msg.Body, Bus: stripewebhook.Bus(bus)}
}

// headersOf is what the headers of m's message say.
func headersOf(m stripewebhook.Message) amqp.Table {
	h := amqp.Table{hdrKey: m.Key, hdrSecret: m.Secret}
	if m.Bus != "" {
		h[hdrBus] = string(m.Bus)
	}
	return h
}

func (d *delivery) Message() stripewebhook.Message { return messageOf(d.msg) }
func (d *delivery) Attempt() int                   { return d.attempt }
func (d *delivery) EnqueuedAt() time.Time          { return d.msg.Timestamp }

// Ack removes the event.
func (d *delivery) Ack(context.Context) error {
	return d.settle(func() error { return d.ch.Ack(d.msg.DeliveryTag, false) })
}

// Extend restarts the visibility timeout.
func (d *delivery) Extend(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled {
		return errExpired
	}
	d.timer.Reset(d.q.ackWait)
	return nil
}

// Return publishes the event back to the queue with the attempts made so
// far (confirmed), then removes this delivery: a nack would count one.
func (d *delivery) Return(ctx context.Context) error {
	return d.moveTo(ctx, d.q.name, amqp.Table{hdrAttempts: int32(d.attempt - 1)})
}

// VisibilityTimeout is how long a received event may stay unsettled,
// unextended, before the Queue puts it back.
func (q *Queue) VisibilityTimeout() time.Duration { return q.ackWait }

// Retry publishes the event to the delay queue of the bucket of delay
// (confirmed), then removes it: it comes back to the queue after the delay.
func (d *delivery) Retry(ctx context.Context, delay time.Duration) error {
	bucket := delayBucket(delay)
	name := d.q.delayName(bucket)
	if err := d.q.declareDelay(ctx, name, bucket); err != nil {
		return err
	}
	return d.moveTo(ctx, name, amqp.Table{hdrAttempts: int32(d.attempt)})
}

// DeadLetter publishes the event to the dead-letter queue with reason
// (confirmed), then removes it.
func (d *delivery) DeadLetter(ctx context.Context, reason string) error {
	return d.moveTo(ctx, d.q.name+".dead", amqp.Table{
		hdrAttempts: int32(d.attempt), hdrReason: reason, hdrAt: time.Now().UTC().Format(time.RFC3339),
	})
}

// moveTo republishes the message to the queue named key with extra
// headers, then acknowledges the original: never lost, at worst twice.
func (d *delivery) moveTo(ctx context.Context, key string, extra amqp.Table) error {
	return d.settle(func() error {
		headers := amqp.Table{}
		for k, v := range d.msg.Headers {
			if k != "x-delivery-count" && k != "x-death" {
				headers[k] = v
			}
		}
		for k, v := range extra {
			headers[k] = v
		}
		err := d.q.publish(ctx, key, amqp.Publishing{
			MessageId: d.msg.MessageId, Timestamp: d.msg.Timestamp, ContentType: d.msg.ContentType, Body: d.msg.Body, Headers: headers,
		})
		if err != nil {
			d.ch.Nack(d.msg.DeliveryTag, false, true)
			return err
		}
		return d.ch.Ack(d.msg.DeliveryTag, false)
	})
}

// bucketsPerDoubling is how finely the delays are bucketed: eight buckets
// per doubling keep each delay within 5 % of the worker's, its jitter
// included, so that events failing together are not retried together.
const bucketsPerDoubling = 8

// delayBucket rounds delay to the nearest of the delay queues' delays
// (2^(k/8) ms), so that a few hundred queues serve every backoff.
func delayBucket(delay time.Duration) time.Duration {
	ms := min(max(delay.Milliseconds(), 1), 1<<maxDelayShift)
	return bucketAt(int(math.Round(bucketsPerDoubling * math.Log2(float64(ms)))))
}

// bucketAt is the delay of bucket k.
func bucketAt(k int) time.Duration {
	return time.Duration(math.Round(math.Exp2(float64(k)/bucketsPerDoubling))) * time.Millisecond
}

// delayName is the name of the delay queue of a bucket.
func (q *Queue) delayName(bucket time.Duration) string {
	return q.name + ".delay." + strconv.FormatInt(bucket.Milliseconds(), 10)
}

// declareDelay declares the delay queue name: its messages expire after
// ttl into the main queue.
func (q *Queue) declareDelay(ctx context.Context, name string, ttl time.Duration) error {
	pub, _, err := q.channels(ctx)
	if err != nil {
		return err
	}
	q.mu.Lock()
	done := q.declared[name]
	q.mu.Unlock()
	if done {
		return nil
	}
	q.pubMu.Lock()
	_, err = pub.QueueDeclare(name, true, false, false, false, amqp.Table{
		"x-message-ttl": ttl.Milliseconds(), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q.name,
	})
	q.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("amqpqueue: queue %s: %w", name, err)
	}
	q.mu.Lock()
	q.declared[name] = true
	q.mu.Unlock()
	return nil
}

// eachDead reads the dead-letter queue on a channel of its own without
// settling anything, until fn returns false or the queue is read; closing
// the channel puts back what fn did not acknowledge, in its place.
func (q *Queue) eachDead(ctx context.Context, fn func(ch *amqp.Channel, msg amqp.Delivery) (bool, error)) error {
	ch, err := q.sideChannel(ctx)
	if err != nil {
		return fmt.Errorf("amqpqueue: dead letters: %w", err)
	}
	defer ch.Close()
	for ctx.Err() == nil {
		msg, ok, err := ch.Get(q.name+".dead", false)
		if err != nil {
			return fmt.Errorf("amqpqueue: dead letters: %w", err)
		}
		if !ok {
			return nil
		}
		if more, err := fn(ch, msg); err != nil || !more {
			return err
		}
	}
	return ctx.Err()
}

// DeadLetters lists the dead-letter queue, oldest first. Two listings at
// once each see part of it.
func (q *Queue) DeadLetters(ctx context.Context) ([]stripewebhook.DeadLetter, error) {
	var out []stripewebhook.DeadLetter
	err := q.eachDead(ctx, func(ch *amqp.Channel, msg amqp.Delivery) (bool, error) {
		attempts, _ := msg.Headers[hdrAttempts].(int32)
		reason, _ := msg.Headers[hdrReason].(string)
		at, _ := msg.Headers[hdrAt].(string)
		when, _ := time.Parse(time.RFC3339, at)
		out = append(out, stripewebhook.DeadLetter{Message: messageOf(msg), Reason: reason, Attempts: int(attempts), At: when})
		return true, nil
	})
	return out, err
}

// Replay queues the dead letter of event id again, with no attempt spent,
// and removes it from the dead-letter queue.
func (q *Queue) Replay(ctx context.Context, id string) error {
	found := false
	err := q.eachDead(ctx, func(ch *amqp.Channel, msg amqp.Delivery) (bool, error) {
		if msg.MessageId != id {
			return true, nil
		}
		found = true
		m := messageOf(msg)
		if err := q.publish(ctx, q.name, amqp.Publishing{
			MessageId: id, Timestamp: time.Now(), ContentType: msg.ContentType, Body: msg.Body,
			Headers: headersOf(m),
		}); err != nil {
			return false, err
		}
		return false, ch.Ack(msg.DeliveryTag, false)
	})
	switch {
	case err != nil:
		return fmt.Errorf("amqpqueue: replay %s: %w", id, err)
	case !found:
		return fmt.Errorf("amqpqueue: replay %s: %w", id, stripewebhook.ErrNoDeadLetter)
	}
	return nil
}

// redacted hides the password of an amqp URL.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "the broker"
}
