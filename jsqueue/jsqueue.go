// Package jsqueue is a stripewebhook.Queue on NATS JetStream, through
// nats.go's jetstream package, for the asynchronous mode: the handler's 200
// follows the publish acknowledgement, workers take events from a durable
// pull consumer.
//
//	nc, _ := nats.Connect("nats://127.0.0.1:4222")
//	js, _ := jetstream.New(nc)
//	q, err := jsqueue.New(ctx, js)
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
//	w, err := stripewebhook.NewWorker(h) // the handler's queue and store
//	go w.Run(ctx)
//
// Layout: a stream (WorkQueue retention, file storage) on <subject>.events,
// each event published with Nats-Msg-Id = its id (JetStream drops a
// duplicate within the stream's duplicate window; the dedup store handles
// those days apart), a durable consumer with an ack wait (the visibility
// timeout: a worker that died has its events redelivered after it), and a
// dead-letter stream on <subject>.dead.
//
// A single server acknowledges a publish once the message is in its
// stream, and flushes its files every sync_interval (2 min by default):
// replicate the stream, or set sync_interval to always, if a power loss
// must not lose an acknowledged event.
package jsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/groupcommit"
	"github.com/stripewebhook/stripewebhook/prefetch"
)

// Defaults.
const (
	DefaultName = "STRIPEWEBHOOK" // the stream; its subjects are stripewebhook.events and .dead
	// DefaultVisibilityTimeout is short because the Worker extends the
	// visibility of every event it holds (an in-progress ack each third of
	// it): a killed worker's events run again within it, while a callback
	// runs for as long as it needs.
	DefaultVisibilityTimeout = 30 * time.Second
)

// Headers of the queued messages.
const (
	hdrID       = "Stripewebhook-Event-Id"
	hdrKey      = "Stripewebhook-Key"
	hdrSecret   = "Stripewebhook-Secret"
	hdrBus      = "Stripewebhook-Bus" // the cloud bus whose envelope the payload is, if any
	hdrReason   = "Stripewebhook-Reason"
	hdrAttempts = "Stripewebhook-Attempts"
	hdrAt       = "Stripewebhook-At"
	hdrBase     = "Stripewebhook-Attempt-Base" // attempts made before a Return put the message back as a new one
)

// Queue is a stripewebhook.Queue on JetStream. It is safe for concurrent
// use.
type Queue struct {
	js              jetstream.JetStream
	events, dead    string // subjects
	stream, deadStr string
	consumer        jetstream.Consumer
	ackWait         time.Duration
	publish         *groupcommit.Batcher[*nats.Msg]
	closed          atomic.Bool
	fetchMu         sync.Mutex
	fetch           *fetcher // nil until the first Receive
}

// ErrClosed is returned by Enqueue and Receive once the Queue is closed.
var ErrClosed = errors.New("jsqueue: closed")

// Close refuses further Enqueues and Receives, and puts back what the
// consumer had fetched ahead of the Receives, attempts unspent (as Return
// does). The caller owns the JetStream context and its connection, and
// closes them after. Like every engine's Close, it takes a context and
// may be called more than once.
func (q *Queue) Close(ctx context.Context) error {
	q.closed.Store(true)
	q.fetchMu.Lock()
	f := q.fetch
	q.fetchMu.Unlock()
	if f == nil {
		return nil
	}
	var errs []error
	for _, msg := range f.close() {
		errs = append(errs, q.putBack(ctx, msg))
	}
	return errors.Join(errs...)
}

// maxBatch bounds how many concurrent Enqueues are published together.
const maxBatch = 256

// publishTimeout bounds the wait for a batch's acknowledgements.
const publishTimeout = 30 * time.Second

var _ stripewebhook.Queue = (*Queue)(nil)

// Option configures a Queue.
type Option func(*config)

type config struct {
	stream, subject string
	ackWait         time.Duration
}

// WithName replaces DefaultName, to share a server between applications:
// the stream is name, its subjects strings.ToLower(name)+".events" and
// ".dead", and the dead letter's stream name+"_DEAD".
func WithName(name string) Option {
	return func(c *config) { c.stream, c.subject = name, strings.ToLower(name) }
}

// WithVisibilityTimeout sets how long a received event may stay unsettled,
// unextended, before it is delivered again (default
// DefaultVisibilityTimeout): the Worker extends the events it holds each
// third of it.
func WithVisibilityTimeout(d time.Duration) Option { return func(c *config) { c.ackWait = d } }

// New creates or updates the streams and the consumer, and returns the
// Queue. The caller owns js and its connection.
func New(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Queue, error) {
	c := config{stream: DefaultName, subject: strings.ToLower(DefaultName), ackWait: DefaultVisibilityTimeout}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case js == nil:
		return nil, fmt.Errorf("%w: jsqueue.New: nil JetStream", stripewebhook.ErrInvalidOption)
	case c.stream == "":
		return nil, fmt.Errorf("%w: jsqueue.WithName: empty name", stripewebhook.ErrInvalidOption)
	case c.ackWait <= 0:
		return nil, fmt.Errorf("%w: jsqueue.WithVisibilityTimeout(%v): must be positive", stripewebhook.ErrInvalidOption, c.ackWait)
	}
	q := &Queue{js: js, events: c.subject + ".events", dead: c.subject + ".dead", stream: c.stream, deadStr: c.stream + "_DEAD", ackWait: c.ackWait}
	q.publish = groupcommit.New(maxBatch, q.publishBatch)
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: q.stream, Subjects: []string{q.events}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: stream %s: %w", q.stream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: q.deadStr, Subjects: []string{q.dead}, Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("jsqueue: stream %s: %w", q.deadStr, err)
	}
	q.consumer, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: q.stream + "_WORKERS", AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.ackWait,
		MaxDeliver: -1, MaxAckPending: 10000, FilterSubject: q.events,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: consumer: %w", err)
	}
	return q, nil
}

// Enqueue publishes m and waits for JetStream's acknowledgement: the event
// is then stored durably. Concurrent Enqueues are published together (the
// ones that arrive while a batch waits for its acknowledgements go in the
// next), so that a burst costs the client and the server one write per
// batch rather than one per event.
func (q *Queue) Enqueue(ctx context.Context, m stripewebhook.Message) error {
	if q.closed.Load() {
		return ErrClosed
	}
	msg := q.eventMsg(m)
	msg.Header[jetstream.MsgIDHeader] = []string{m.ID} // JetStream drops a duplicate within its window
	if err := q.publish.Do(ctx, msg); err != nil {
		return fmt.Errorf("jsqueue: publish %s: %w", m.ID, err)
	}
	return nil
}

// eventMsg is the message of m on the events subject.
func (q *Queue) eventMsg(m stripewebhook.Message) *nats.Msg {
	h := nats.Header{hdrID: {m.ID}, hdrKey: {m.Key}, hdrSecret: {m.Secret}} // canonical keys: no Set
	if m.Bus != "" {
		h[hdrBus] = []string{string(m.Bus)}
	}
	return &nats.Msg{Subject: q.events, Data: m.Payload, Header: h}
}

// publishBatch publishes msgs asynchronously, then waits for each one's
// acknowledgement.
func (q *Queue) publishBatch(msgs []*nats.Msg, errs []error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, msg := range msgs {
		futures[i], errs[i] = q.js.PublishMsgAsync(msg)
	}
	timeout := time.NewTimer(publishTimeout)
	defer timeout.Stop()
	expired := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		if !expired {
			select {
			case <-f.Ok():
				continue
			case errs[i] = <-f.Err():
				continue
			case <-timeout.C:
				expired = true
			}
		}
		select { // after the timeout, take what has come
		case <-f.Ok():
		case errs[i] = <-f.Err():
		default:
			errs[i] = fmt.Errorf("no acknowledgement within %v", publishTimeout)
		}
	}
}

// Receive waits for the next event.
func (q *Queue) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	for {
		if q.closed.Load() {
			return nil, ErrClosed
		}
		msg, err := q.fetched().buf.Take(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, prefetch.ErrClosed) {
				continue
			}
			return nil, fmt.Errorf("jsqueue: receive: %w", err)
		}
		return q.deliveryOf(msg)
	}
}

func (q *Queue) deliveryOf(msg jetstream.Msg) (*delivery, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("jsqueue: receive: %w", err)
	}
	base, _ := strconv.Atoi(msg.Headers().Get(hdrBase))
	return &delivery{q: q, msg: msg, seq: md.Sequence.Stream, attempt: base + int(md.NumDelivered), at: md.Timestamp}, nil
}

// putBack returns a fetched message that no Receive took.
func (q *Queue) putBack(ctx context.Context, msg jetstream.Msg) error {
	d, err := q.deliveryOf(msg)
	if err == nil {
		err = d.Return(ctx)
	}
	return err
}

// fetched returns the Queue's fetcher, started by the first Receive.
func (q *Queue) fetched() *fetcher {
	q.fetchMu.Lock()
	defer q.fetchMu.Unlock()
	if q.fetch == nil {
		q.fetch = newFetcher(q)
	}
	return q.fetch
}

// headerRoom is what the Queue keeps of the server's max_payload for the
// headers it adds to an event (its id twice, its key, the secret's name).
const headerRoom = 4 << 10

// MaxPayload is the largest event the Queue can publish: the server's
// max_payload (1 MiB by default), which counts the headers, less what its
// headers take. A Handler with this queue keeps its body cap within it
// (see stripewebhook.WithQueue); raise max_payload in nats-server's
// configuration to take larger bodies.
func (q *Queue) MaxPayload() int64 {
	if nc := q.js.Conn(); nc != nil {
		if m := nc.MaxPayload(); m > headerRoom {
			return m - headerRoom
		}
	}
	return 0
}

// VisibilityTimeout is the consumer's ack wait.
func (q *Queue) VisibilityTimeout() time.Duration { return q.ackWait }

type delivery struct {
	q       *Queue
	msg     jetstream.Msg
	seq     uint64 // in the stream
	attempt int
	at      time.Time
}

func messageOf(h nats.Header, data []byte) stripewebhook.Message {
	return stripewebhook.Message{ID: h.Get(hdrID), Key: h.Get(hdrKey), Secret: h.Get(hdrSecret), Payload: data, Bus: stripewebhook.Bus(h.Get(hdrBus))}
}

func (d *delivery) Message() stripewebhook.Message { return messageOf(d.msg.Headers(), d.msg.Data()) }
func (d *delivery) Attempt() int                   { return d.attempt }
func (d *delivery) EnqueuedAt() time.Time          { return d.at }

// Ack removes the event. It does not wait for the server to confirm: the
// Worker acks after the dedup store has the event as done, so an ack lost
// with the connection brings back an event that the store drops, while
// waiting for each confirm would cost every worker slot a round trip per
// event (a third of the drain rate, measured by bench's QueueDrain).
func (d *delivery) Ack(context.Context) error { return d.msg.Ack() }

// Extend restarts the ack wait (an in-progress ack).
func (d *delivery) Extend(context.Context) error { return d.msg.InProgress() }

// Return publishes the event again, as a new message that carries the
// attempts made so far, then removes this one: a nak would count a
// delivery.
func (d *delivery) Return(ctx context.Context) error {
	msg := nats.NewMsg(d.q.events)
	msg.Data = d.msg.Data()
	for k, v := range d.msg.Headers() {
		msg.Header[k] = v
	}
	msg.Header.Set(hdrBase, strconv.Itoa(d.attempt-1))
	// A new message id: the original is still in the duplicate window.
	msg.Header.Set(jetstream.MsgIDHeader, d.msg.Headers().Get(hdrID)+"/return/"+strconv.FormatUint(d.seq, 10))
	if _, err := d.q.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("jsqueue: return: %w", err)
	}
	return d.msg.DoubleAck(ctx)
}

// Retry delivers the event again after delay.
func (d *delivery) Retry(_ context.Context, delay time.Duration) error {
	return d.msg.NakWithDelay(delay)
}

// DeadLetter publishes the event to the dead-letter stream, then removes it.
func (d *delivery) DeadLetter(ctx context.Context, reason string) error {
	dl := nats.NewMsg(d.q.dead)
	dl.Data = d.msg.Data()
	for k, v := range d.msg.Headers() {
		if k != jetstream.MsgIDHeader && k != hdrBase {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(hdrReason, reason)
	dl.Header.Set(hdrAttempts, strconv.Itoa(d.attempt))
	dl.Header.Set(hdrAt, time.Now().UTC().Format(time.RFC3339))
	if _, err := d.q.js.PublishMsg(ctx, dl); err != nil {
		return fmt.Errorf("jsqueue: dead letter: %w", err)
	}
	return d.msg.Term()
}

// DeadLetters lists the dead-letter stream, oldest first.
func (q *Queue) DeadLetters(ctx context.Context) ([]stripewebhook.DeadLetter, error) {
	var out []stripewebhook.DeadLetter
	err := q.eachDead(ctx, func(seq uint64, m *jetstream.RawStreamMsg) bool {
		attempts, _ := strconv.Atoi(m.Header.Get(hdrAttempts))
		at, _ := time.Parse(time.RFC3339, m.Header.Get(hdrAt))
		out = append(out, stripewebhook.DeadLetter{Message: messageOf(m.Header, m.Data), Reason: m.Header.Get(hdrReason), Attempts: attempts, At: at})
		return true
	})
	return out, err
}

// Replay queues the dead letter of event id again and removes it from the
// dead-letter stream.
func (q *Queue) Replay(ctx context.Context, id string) error {
	found := false
	var err error
	walkErr := q.eachDead(ctx, func(seq uint64, m *jetstream.RawStreamMsg) bool {
		if m.Header.Get(hdrID) != id {
			return true
		}
		found = true
		msg := q.eventMsg(messageOf(m.Header, m.Data))
		// A new message id: the original is still in the duplicate window.
		if _, err = q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id+"/replay/"+strconv.FormatUint(seq, 10))); err == nil {
			var s jetstream.Stream
			if s, err = q.js.Stream(ctx, q.deadStr); err == nil {
				err = s.DeleteMsg(ctx, seq)
			}
		}
		return false
	})
	switch {
	case walkErr != nil:
		return walkErr
	case !found:
		return fmt.Errorf("jsqueue: replay %s: %w", id, stripewebhook.ErrNoDeadLetter)
	}
	return err
}

// eachDead calls fn for each message of the dead-letter stream until it
// returns false.
func (q *Queue) eachDead(ctx context.Context, fn func(uint64, *jetstream.RawStreamMsg) bool) error {
	s, err := q.js.Stream(ctx, q.deadStr)
	if err != nil {
		return fmt.Errorf("jsqueue: dead letters: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("jsqueue: dead letters: %w", err)
	}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted by a replay
		}
		if err != nil {
			return fmt.Errorf("jsqueue: dead letters: %w", err)
		}
		if !fn(seq, m) {
			return nil
		}
	}
	return nil
}
