// Package sqswebhook consumes an Amazon SQS queue that an EventBridge rule
// on Stripe's partner event bus targets, and runs each message's event
// through a stripewebhook.Handler's pipeline: the same dispatcher, typed
// callbacks, dedup store (EventBridge and SQS deliver at least once; an
// event that also arrives by Stripe's webhook runs once), ordering guard,
// queue and observer. For a service that is not a Lambda function (for
// one, see lambdawebhook).
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	c, err := sqswebhook.New(h, sqs.NewFromConfig(cfg), queueURL)
//	go c.Run(ctx)
//
// It long-polls the queue, runs up to WithConcurrency messages at once,
// extends a message's visibility while its callbacks run, deletes it once
// they succeeded, and leaves a failed one (or one from a source the
// Handler does not pin) to come back after its visibility timeout: the
// queue's redrive policy dead-letters what keeps failing. Run drains like
// the Worker: on cancel it takes no more, lets what runs finish within the
// drain timeout, and makes what it held and did not finish visible again.
package sqswebhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/stripewebhook/stripewebhook"
)

// Defaults.
const (
	DefaultConcurrency       = 4
	DefaultVisibilityTimeout = 30 * time.Second // asked for at each receive, extended each third while a message runs
	DefaultDrainTimeout      = 30 * time.Second
	waitTime                 = 20 // seconds: SQS's longest long poll
)

// API is the part of the SQS client the Consumer uses; *sqs.Client is one.
type API interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Consumer takes a queue's messages to a Handler. It is safe to run
// several, in one process or many, on one queue.
type Consumer struct {
	h          *stripewebhook.Handler
	api        API
	url        string
	concurrent int
	visibility time.Duration
	drain      time.Duration
	logger     *slog.Logger
}

// Option configures a Consumer.
type Option func(*Consumer)

// WithConcurrency sets how many messages run at once (DefaultConcurrency).
func WithConcurrency(n int) Option { return func(c *Consumer) { c.concurrent = n } }

// WithVisibilityTimeout sets the visibility a received message gets, and
// is extended by each third of it while it runs (DefaultVisibilityTimeout,
// whole seconds): how soon a killed consumer's messages come back, and a
// failed one.
func WithVisibilityTimeout(d time.Duration) Option { return func(c *Consumer) { c.visibility = d } }

// WithDrainTimeout bounds how long Run lets what runs finish once its
// context is done (DefaultDrainTimeout).
func WithDrainTimeout(d time.Duration) Option { return func(c *Consumer) { c.drain = d } }

// WithLogger sets the logger (slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Consumer) { c.logger = l } }

// New returns a Consumer of the queue at queueURL. It fails, saying what
// is wrong, if h pins no destination (Handler.TrustsBus), the client or the
// URL is missing, or an option is out of range.
func New(h *stripewebhook.Handler, api API, queueURL string, opts ...Option) (*Consumer, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: sqswebhook: "+format, append([]any{stripewebhook.ErrInvalidOption}, args...)...)
	}
	switch {
	case h == nil:
		return nil, bad("nil Handler")
	case api == nil:
		return nil, bad("nil SQS client")
	case queueURL == "":
		return nil, bad("no queue URL")
	}
	if err := h.TrustsBus(); err != nil {
		return nil, fmt.Errorf("sqswebhook: %w", err)
	}
	c := &Consumer{h: h, api: api, url: queueURL, concurrent: DefaultConcurrency, visibility: DefaultVisibilityTimeout, drain: DefaultDrainTimeout}
	for _, o := range opts {
		o(c)
	}
	switch {
	case c.concurrent <= 0:
		return nil, bad("WithConcurrency(%d): must be positive", c.concurrent)
	case c.visibility < time.Second || c.visibility > 12*time.Hour || c.visibility%time.Second != 0:
		return nil, bad("WithVisibilityTimeout(%v): whole seconds from 1 s to 12 h (SQS's range)", c.visibility)
	case c.drain <= 0:
		return nil, bad("WithDrainTimeout(%v): must be positive", c.drain)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c, nil
}

// Run receives and runs messages until ctx is done, then drains, and
// returns nil. While SQS cannot be reached it logs and tries again with
// backoff.
func (c *Consumer) Run(ctx context.Context) error {
	// The runs go on under runCtx until the drain timeout after ctx.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.drain, cancelRuns)
		context.AfterFunc(runCtx, func() { t.Stop() })
	})
	defer stop()

	slots := make(chan struct{}, c.concurrent)
	var running sync.WaitGroup
	defer running.Wait()
	failures := 0
	for ctx.Err() == nil {
		// Receive only for free slots, so that nothing waits unextended.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
		for free < min(c.concurrent, 10) {
			select {
			case slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		out, err := c.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(c.url), MaxNumberOfMessages: int32(free), WaitTimeSeconds: waitTime,
			VisibilityTimeout: int32(c.visibility / time.Second), MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		var msgs []types.Message
		if out != nil {
			msgs = out.Messages
		}
		for range free - len(msgs) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			c.logger.LogAttrs(ctx, slog.LevelError, "sqswebhook: receiving failed; retrying", slog.Int("failures", failures), slog.Any("error", err))
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		failures = 0
		for _, m := range msgs {
			running.Go(func() {
				defer func() { <-slots }()
				c.run(runCtx, m)
			})
		}
	}
	return nil
}

// run delivers m, extending its visibility meanwhile, and deletes it if it
// ran (or was a duplicate, or filtered).
func (c *Consumer) run(ctx context.Context, m types.Message) {
	held, release := context.WithCancel(context.WithoutCancel(ctx))
	var extending sync.WaitGroup
	extending.Go(func() { c.extend(held, m) })
	err := c.deliver(ctx, m)
	release()
	extending.Wait()
	bg := context.WithoutCancel(ctx)
	if err == nil {
		if _, err := c.api.DeleteMessage(bg, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.url), ReceiptHandle: m.ReceiptHandle}); err != nil {
			// It comes back after the visibility timeout; the dedup store
			// drops it then.
			c.logger.LogAttrs(bg, slog.LevelWarn, "sqswebhook: deleting a message that ran failed", slog.String("message_id", aws.ToString(m.MessageId)), slog.Any("error", err))
		}
		return
	}
	level := slog.LevelWarn
	var lockErr *stripewebhook.LockError
	switch {
	case ctx.Err() != nil: // cut off by the drain timeout: visible again at once
		level = slog.LevelInfo
		_ = c.visible(bg, m, 0) // failed: back after its visibility timeout
	case errors.Is(err, stripewebhook.ErrInProgress) || errors.As(err, &lockErr):
		// Running elsewhere (a copy from the webhook, another consumer):
		// soon done, so back soon, not after a whole timeout.
		level = slog.LevelDebug
		_ = c.visible(bg, m, inProgressDelay)
	}
	c.logger.LogAttrs(bg, level, "sqswebhook: a message did not run; it comes back after its visibility timeout, and the queue's redrive policy dead-letters it if it keeps failing",
		slog.String("message_id", aws.ToString(m.MessageId)), slog.String("receive_count", m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]), slog.Any("error", err))
}

// inProgressDelay is when a message whose event runs elsewhere is tried
// again.
const inProgressDelay = 2 * time.Second

// visible makes m visible again after d.
func (c *Consumer) visible(ctx context.Context, m types.Message, d time.Duration) error {
	_, err := c.api.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(c.url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(d / time.Second)})
	return err
}

// deliver parses m and runs its event.
func (c *Consumer) deliver(ctx context.Context, m types.Message) error {
	e, err := stripewebhook.ParseEventBridge([]byte(aws.ToString(m.Body)))
	if err != nil {
		return err
	}
	return c.h.Deliver(ctx, e)
}

// extend keeps m invisible to others until ctx is done.
func (c *Consumer) extend(ctx context.Context, m types.Message) {
	t := time.NewTicker(c.visibility / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.visible(ctx, m, c.visibility); err != nil && !errors.Is(err, context.Canceled) {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "sqswebhook: extending a message's visibility failed; another consumer may receive it, and the dedup store keeps it from running twice",
				slog.String("message_id", aws.ToString(m.MessageId)), slog.Any("error", err))
		}
	}
}
