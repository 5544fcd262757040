package amqpqueue_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/amqpqueue"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/queuetest"
)

// envURL names the RabbitMQ broker the tests use; scripts/test.sh sets it.
const envURL = "STRIPEWEBHOOK_AMQP_URL"

func amqpURL(t *testing.T) string {
	return dedupstoretest.ServerURL(t, envURL, "amqp://guest:guest@127.0.0.1:5672/")
}

// open opens the queue of namespace ns on the broker at raw, and deletes
// its queues when the test ends.
func open(t *testing.T, raw, ns string) stripewebhook.Queue {
	q, err := amqpqueue.New(context.Background(), amqpqueue.Dial(raw), amqpqueue.WithName(ns), amqpqueue.WithVisibilityTimeout(time.Second))
	if err != nil {
		t.Fatalf("%s cannot be reached: %v", envURL, err)
	}
	t.Cleanup(func() {
		if err := q.Delete(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return q
}

func TestConformance(t *testing.T) {
	raw := amqpURL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	queuetest.Run(t, queuetest.Config{
		Open:    func(t *testing.T, ns string) stripewebhook.Queue { return open(t, raw, ns) },
		AckWait: time.Second,
		Backend: u.Host,
		OpenVia: func(t *testing.T, ns, addr string) stripewebhook.Queue {
			v := *u
			v.Host = addr
			return open(t, v.String(), ns)
		},
	})
}

// A broker that cannot be reached is an error at New, without the URL's
// password.
func TestNewUnreachable(t *testing.T) {
	_, err := amqpqueue.New(context.Background(), amqpqueue.Dial("amqp://guest:hunter2@127.0.0.1:1/"))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("%v", err)
	}
}

// A configuration mistake is ErrInvalidOption, naming the option, before
// any dial.
func TestInvalidConfig(t *testing.T) {
	dial := amqpqueue.Dial("amqp://127.0.0.1:1/")
	for want, opts := range map[string][]amqpqueue.Option{
		"amqpqueue.WithName":              {amqpqueue.WithName("")},
		"amqpqueue.WithVisibilityTimeout": {amqpqueue.WithVisibilityTimeout(0)},
	} {
		_, err := amqpqueue.New(context.Background(), dial, opts...)
		if !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	if _, err := amqpqueue.New(context.Background(), nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Errorf("nil Dialer: %v", err)
	}
}

func TestClosed(t *testing.T) {
	ns := queuetest.Namespace(t)
	open(t, amqpURL(t), ns) // deletes the queues at the end
	q, err := amqpqueue.New(context.Background(), amqpqueue.Dial(amqpURL(t)), amqpqueue.WithName(ns))
	if err != nil {
		t.Fatal(err)
	}
	q.Close(context.Background())
	if err := q.Enqueue(context.Background(), stripewebhook.Message{ID: "evt_1", Payload: []byte("{}")}); !errors.Is(err, amqpqueue.ErrClosed) {
		t.Fatalf("enqueue after Close: %v", err)
	}
}

// A channel error (here: a delay queue declared elsewhere with other
// arguments) closes the channel; the retry fails, the event comes back
// after the ack wait, and the queue opens another channel and goes on.
func TestChannelErrorRecovers(t *testing.T) {
	raw := amqpURL(t)
	ns := queuetest.Namespace(t)
	q := open(t, raw, ns)
	conn, err := amqp.Dial(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	bucket := strconv.FormatInt(amqpqueue.DelayBucket(10*time.Millisecond).Milliseconds(), 10)
	if _, err := ch.QueueDeclare(ns+".delay."+bucket, true, false, false, false, amqp.Table{"x-message-ttl": int64(5)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: ns + "1", Key: "k", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	d, err := q.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Retry(ctx, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Fatalf("retry into a queue declared otherwise: %v", err)
	}
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: ns + "2", Key: "k", Payload: []byte("{}")}); err != nil {
		t.Fatalf("enqueue after the channel error: %v", err)
	}
	got := map[string]int{}
	for len(got) < 2 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := q.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("received %v: %v", got, err)
		}
		got[d.Message().ID] = d.Attempt()
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got[ns+"1"] != 2 || got[ns+"2"] != 1 {
		t.Fatalf("attempts %v: the failed retry comes back once, as attempt 2", got)
	}
}

// The delay buckets keep each delay within 5 % (its jitter with it: the
// delays a worker draws for events failing together land in distinct
// buckets), from a millisecond to the longest.
func TestDelayBucket(t *testing.T) {
	for delay, want := range map[time.Duration]time.Duration{
		0: time.Millisecond, time.Millisecond: time.Millisecond, 1024 * time.Millisecond: 1024 * time.Millisecond,
		365 * 24 * time.Hour: 1 << 31 * time.Millisecond,
	} {
		if got := amqpqueue.DelayBucket(delay); got != want {
			t.Errorf("%v: bucket %v, want %v", delay, got, want)
		}
	}
	buckets := map[time.Duration]bool{}
	for ms := 20; ms <= 1<<30; ms = ms*21/20 + 1 {
		delay := time.Duration(ms) * time.Millisecond
		got := amqpqueue.DelayBucket(delay)
		if ratio := float64(got) / float64(delay); ratio < 0.95 || ratio > 1.05 {
			t.Errorf("%v: bucket %v, %.3f of it", delay, got, ratio)
		}
		if delay >= time.Second && delay < 2*time.Second {
			buckets[got] = true
		}
	}
	if len(buckets) < 7 {
		t.Errorf("delays from 1 s to 2 s fall in %d buckets, want 8", len(buckets))
	}
}
