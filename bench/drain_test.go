package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/rivqueue"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// drainEvents is how many events each drain takes from a full queue.
const drainEvents = 20000

// A native drains n messages that fill put on the engine's queue named
// ns, with the engine's own client and consumer loop, and returns the
// time from the first take to the last acknowledgement.
type native func(b *testing.B, url, ns string, payload []byte, n int) time.Duration

var natives = map[string]native{"jetstream": jetStreamLoop, "river": riverLoop, "rabbitmq": rabbitMQLoop}

// BenchmarkQueueDrain: a queue holding 20 000 events, drained by a Worker
// with no-op callbacks (the default concurrency, and 16), against the
// engine's own consumer loop draining as many of the same messages in the
// same run (JetStream: a durable pull consumer's Consume with an ack per
// message; RabbitMQ: basic.consume with a prefetch and an ack per message;
// River: a River client working the jobs with a no-op worker, with
// rivqueue's fetchers and fetch cooldown), and the ratio, printed for each
// run and reported as a metric, so that benchstat gives the medians over
// several:
//
//	STRIPEWEBHOOK_NATS_URL=nats://127.0.0.1:4222 \
//	STRIPEWEBHOOK_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	STRIPEWEBHOOK_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//	go test -run '^$' -bench QueueDrain -benchtime 1x -count 6 ./bench/ | tee drain.txt
//	benchstat drain.txt
func BenchmarkQueueDrain(b *testing.B) {
	payload := webhooktest.Fixture(b, "payment_intent.succeeded")
	run := time.Now().UnixNano() % 1e9
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			url := os.Getenv(e.env)
			if url == "" {
				b.Skipf("set %s to measure %s", e.env, e.name)
			}
			own := natives[e.name](b, url, fmt.Sprintf("QDN%d", run), payload, drainEvents)
			ownRate := drainEvents / own.Seconds()
			b.ReportMetric(ownRate, "events/s(own-loop)")
			for _, workers := range []int{stripewebhook.DefaultConcurrency, 16} {
				ns := fmt.Sprintf("QD%d_%d", run, workers)
				took := drainWorker(b, e.open(b, url, ns), ns, payload, drainEvents, workers)
				rate := drainEvents / took.Seconds()
				b.ReportMetric(rate, fmt.Sprintf("events/s(workers=%d)", workers))
				b.ReportMetric(rate/ownRate, fmt.Sprintf("ratio(workers=%d)", workers))
				b.Logf("ratio drain %-9s %d events: Worker (concurrency %2d) %6.0f/s, the engine's own loop %6.0f/s: %.2f",
					e.name, drainEvents, workers, rate, ownRate, rate/ownRate)
			}
		})
	}
}

// fillEach calls put(i) for i in [0, n) from 16 goroutines.
func fillEach(b *testing.B, n int, put func(i int) error) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := put(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// drainWorker fills q with n events about n objects, then runs a Worker
// of the given concurrency with no-op callbacks until all n have run, and
// returns the time from its start to the last run.
func drainWorker(b *testing.B, q stripewebhook.Queue, ns string, payload []byte, n, workers int) time.Duration {
	ctx := context.Background()
	fillEach(b, n, func(i int) error {
		id := fmt.Sprintf("evt_%s_%d", ns, i)
		return q.Enqueue(ctx, stripewebhook.Message{ID: id, Key: id, Secret: "main", Payload: webhooktest.WithID(b, payload, id)})
	})
	var ran atomic.Int64
	all := make(chan struct{})
	d := stripewebhook.NewDispatcher()
	var start time.Time
	d.HandleFunc("payment_intent.succeeded", func(context.Context, *stripewebhook.Event) error {
		k := ran.Add(1)
		if k%1000 == 0 && os.Getenv("DRAIN_TRACE") != "" {
			fmt.Println("  ", k, time.Since(start))
		}
		if k == int64(n) {
			close(all)
		}
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(benchSecret), stripewebhook.WithQueue(q),
		stripewebhook.WithDedup(stripewebhook.NewMemoryStore(0, quietLogger())), quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(workers))
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	start = time.Now()
	go func() { w.Run(wctx); close(done) }()
	defer func() { stop(); <-done }()
	select {
	case <-all:
		return time.Since(start)
	case <-time.After(3 * time.Minute):
		b.Fatalf("%d of %d events ran in 3 minutes", ran.Load(), n)
		return 0
	}
}

// jetStreamLoop: a stream and a durable consumer configured as jsqueue's,
// filled with n messages, drained by Consume acking each message.
func jetStreamLoop(b *testing.B, url, ns string, payload []byte, n int) time.Duration {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	subject := strings.ToLower(ns)
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: ns, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(ctx, ns)
	fillEach(b, n, func(i int) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{jetstream.MsgIDHeader: {fmt.Sprint(i)}}})
		return err
	})
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: ns + "_WORKERS", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1, MaxAckPending: 10000})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	all := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if err := msg.Ack(); err != nil {
			b.Error(err)
		}
		if got.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	return waitAll(b, all, start, &got, n)
}

// rabbitMQLoop: a quorum queue filled with n persistent messages, drained
// by basic.consume (prefetch 64) acking each message.
func rabbitMQLoop(b *testing.B, url, ns string, payload []byte, n int) time.Duration {
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ch.QueueDeclare(ns, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			c.QueueDelete(ns, false, false, false)
		}
	}()
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	fillEach(b, n, func(i int) error {
		mu.Lock()
		c, err := ch.PublishWithDeferredConfirm("", ns, true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i), Body: payload})
		mu.Unlock()
		if err == nil && !c.Wait() {
			err = fmt.Errorf("nack")
		}
		return err
	})
	get, err := conn.Channel()
	if err == nil {
		err = get.Qos(64, 0, false)
	}
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	msgs, err := get.Consume(ns, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	all := make(chan struct{})
	go func() {
		for m := range msgs {
			if err := m.Ack(false); err != nil {
				b.Error(err)
			}
			if got.Add(1) == int64(n) {
				close(all)
				return
			}
		}
	}()
	return waitAll(b, all, start, &got, n)
}

// noopArgs are the native River loop's jobs: the event's payload, as
// rivqueue's jobs carry it.
type noopArgs struct {
	Payload []byte `json:"payload"`
}

func (noopArgs) Kind() string { return "stripewebhook_bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	ran func()
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error { w.ran(); return nil }

// riverLoop: n jobs inserted on a queue of their own, worked by a River
// client with a no-op worker, as many workers as rivqueue's fetchers.
func riverLoop(b *testing.B, url, ns string, payload []byte, n int) time.Duration {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	queue := strings.ToLower(ns)
	defer pool.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, queue)
	var got atomic.Int64
	all := make(chan struct{})
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{ran: func() {
		if got.Add(1) == int64(n) {
			close(all)
		}
	}})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		// rivqueue's fetchers and fetch cooldown, so that the two differ
		// only in what rivqueue and the Worker add.
		Queues:        map[string]river.QueueConfig{queue: {MaxWorkers: rivqueue.DefaultFetchers}},
		FetchCooldown: 5 * time.Millisecond,
		Workers:       workers,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{payload}, InsertOpts: &river.InsertOpts{Queue: queue}}
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := client.InsertManyFastTx(ctx, tx, params); return err }); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer client.Stop(ctx)
	return waitAll(b, all, start, &got, n)
}

func waitAll(b *testing.B, all <-chan struct{}, start time.Time, got *atomic.Int64, n int) time.Duration {
	select {
	case <-all:
		return time.Since(start)
	case <-time.After(3 * time.Minute):
		b.Fatalf("%d of %d messages in 3 minutes", got.Load(), n)
		return 0
	}
}
