package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/amqpqueue"
	"github.com/stripewebhook/stripewebhook/bench/internal/load"
	"github.com/stripewebhook/stripewebhook/jsqueue"
	"github.com/stripewebhook/stripewebhook/rivqueue"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// engine opens a fresh queue of one engine.
type engine struct {
	name string
	env  string
	open func(b *testing.B, url, ns string) stripewebhook.Queue
	// limit measures the engine's own rate of durable accepts with as many
	// clients as the handler has connections, in the same run: a publish
	// loop awaiting each PubAck, or pgbench of one INSERT per transaction.
	limit func(b *testing.B, url, ns string, clients int) float64
}

var engines = []engine{
	{"jetstream", "STRIPEWEBHOOK_NATS_URL", openJetStream, publishLoop},
	{"river", "STRIPEWEBHOOK_POSTGRES_URL", openRiver, func(b *testing.B, url, _ string, clients int) float64 { return pgbench(b, url, clients) }},
	{"rabbitmq", "STRIPEWEBHOOK_AMQP_URL", openRabbitMQ, confirmLoop},
}

func openRabbitMQ(b *testing.B, url, ns string) stripewebhook.Queue {
	q, err := amqpqueue.New(context.Background(), amqpqueue.Dial(url), amqpqueue.WithName(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Delete(context.Background()) })
	return q
}

// confirmLoop publishes persistent messages to a quorum queue from clients
// goroutines, each on a channel of its own and waiting for each confirm,
// for 3 seconds.
func confirmLoop(b *testing.B, url, ns string, clients int) float64 {
	conn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	name := ns + "_LIMIT"
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		b.Fatal(err)
	}
	defer ch.QueueDelete(name, false, false, false)
	payload := webhooktest.Fixture(b, "payment_intent.succeeded")
	return loadFor3s(b, clients, func(g int) func(n int) error {
		pc, err := conn.Channel()
		if err == nil {
			err = pc.Confirm(false)
		}
		if err != nil {
			b.Error(err)
			return nil
		}
		return func(n int) error {
			c, err := pc.PublishWithDeferredConfirm("", name, true, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(n), Body: payload,
				Headers: amqp.Table{"stripewebhook-key": "pi_limit", "stripewebhook-secret": "main"},
			})
			if err == nil && !c.Wait() {
				err = fmt.Errorf("nack")
			}
			return err
		}
	})
}

func openJetStream(b *testing.B, url, ns string) stripewebhook.Queue {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	q, err := jsqueue.New(context.Background(), js, jsqueue.WithName(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { js.DeleteStream(context.Background(), ns); js.DeleteStream(context.Background(), ns+"_DEAD") })
	return q
}

func openRiver(b *testing.B, url, ns string) stripewebhook.Queue {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	q, err := rivqueue.New(pool, rivqueue.WithName(strings.ToLower(ns)))
	if err == nil {
		err = q.Migrate(context.Background())
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		q.Close(context.Background())
		// The jobs no worker took: left behind, they would slow the inserts
		// of every later run.
		if _, err := pool.Exec(context.Background(), `DELETE FROM river_job WHERE queue = $1`, strings.ToLower(ns)); err != nil {
			b.Error(err)
		}
		pool.Close()
	})
	return q
}

// publishLoop publishes to a stream of the same configuration from
// clients goroutines, each waiting for its PubAck, for 3 seconds.
func publishLoop(b *testing.B, url, ns string, clients int) float64 {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	name := ns + "_LIMIT"
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(ctx, name)
	payload := webhooktest.Fixture(b, "payment_intent.succeeded")
	return loadFor3s(b, clients, func(g int) func(n int) error {
		return func(n int) error {
			// The message jsqueue publishes: the payload, the event id as
			// Nats-Msg-Id and its three headers.
			id := fmt.Sprintf("limit-%d-%d", g, n)
			msg := &nats.Msg{Subject: strings.ToLower(name), Data: payload, Header: nats.Header{
				"Stripewebhook-Event-Id": {id}, jetstream.MsgIDHeader: {id}, "Stripewebhook-Key": {"pi_limit"}, "Stripewebhook-Secret": {"main"},
			}}
			_, err := js.PublishMsg(ctx, msg)
			return err
		}
	})
}

// loadFor3s runs clients goroutines for 3 seconds, each calling the
// function that start(g) returns (nil: none) for n = 0, 1, … until the
// time is up or it fails, and returns the calls per second.
func loadFor3s(b *testing.B, clients int, start func(g int) func(n int) error) float64 {
	var mu sync.Mutex
	total := 0
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := start(g)
			if call == nil {
				return
			}
			n := 0
			for ; time.Now().Before(deadline); n++ {
				if err := call(n); err != nil {
					b.Error(err)
					return
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(total) / 3
}

func quietLogger() stripewebhook.LoggerOption {
	return stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// ackServer serves a handler whose payment_intent.succeeded callback
// sleeps for work, in the synchronous mode (q nil) or queueing to q with a
// worker (16 at once) in the process.
func ackServer(b *testing.B, q stripewebhook.Queue, work time.Duration, workers bool) *httptest.Server {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("payment_intent.succeeded", func(ctx context.Context, _ *stripewebhook.Event) error {
		select {
		case <-time.After(work):
		case <-ctx.Done():
		}
		return nil
	})
	store := stripewebhook.NewMemoryStore(0, quietLogger())
	opts := []stripewebhook.HandlerOption{stripewebhook.WithDedup(store), quietLogger()}
	if q != nil {
		opts = append(opts, stripewebhook.WithQueue(q))
	}
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(benchSecret), opts...)
	if err != nil {
		b.Fatal(err)
	}
	if q != nil && workers {
		w, err := stripewebhook.NewWorker(h, stripewebhook.WithConcurrency(16))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv
}

// bareServer serves a handler that enqueues each request's body as it is:
// what HTTP and the engine cost without stripewebhook.
func bareServer(b *testing.B, q stripewebhook.Queue) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			id := "evt_bare_" + strconv.FormatInt(n.Add(1), 10)
			err = q.Enqueue(r.Context(), stripewebhook.Message{ID: id, Key: id, Payload: body})
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

func p99(lat []time.Duration) time.Duration {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)*99/100]
}

// BenchmarkQueueAck: a burst of events over 16 connections, with no-op
// callbacks and with 100 ms callbacks, synchronous and on each queue; the
// p99 time to the 200, and the rate of durable acknowledgements against
// the engine's own limit, in the same run:
//
//	STRIPEWEBHOOK_NATS_URL=nats://127.0.0.1:4222 \
//	STRIPEWEBHOOK_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	STRIPEWEBHOOK_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//	go test -run '^$' -bench QueueAck -benchtime 1x ./bench/
func BenchmarkQueueAck(b *testing.B) {
	base := webhooktest.Fixture(b, "payment_intent.succeeded")
	// The raw generator: net/http's client would take a third of the two
	// cores that the handler and the engine's server share.
	burst := func(b *testing.B, url, prefix string, n, conns int) ([]time.Duration, time.Duration) {
		lat, wall, err := load.FireRaw(strings.TrimPrefix(url, "http://"), load.Sign(base, prefix, n, time.Now(), benchSecret), conns)
		if err != nil {
			b.Fatal(err)
		}
		return lat, wall
	}
	run := time.Now().UnixNano()
	// Synchronous: the 200 waits for the callbacks. A smaller burst: at 16
	// connections, 100 ms callbacks serve 160 events a second.
	for _, work := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("sync/callback=%v", work), func(b *testing.B) {
			lat, _ := burst(b, ackServer(b, nil, work, false).URL, fmt.Sprintf("evt_sync_%d_%v_", run, work), 500, 16)
			b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
			fmt.Printf("ratio queue sync      callback %-6v 500 events p99 %v\n", work, p99(lat).Round(time.Millisecond))
		})
	}
	for _, e := range engines {
		url := os.Getenv(e.env)
		var noop, slow time.Duration
		for _, work := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/callback=%v", e.name, work), func(b *testing.B) {
				if url == "" {
					b.Skipf("set %s to measure %s", e.env, e.name)
				}
				ns := fmt.Sprintf("QB%d%s", run%1e9, strings.ReplaceAll(work.String(), "ms", ""))
				srv := ackServer(b, e.open(b, url, ns), work, true)
				burst(b, srv.URL, ns+"_warm_", 200, 16)
				lat, _ := burst(b, srv.URL, ns+"_", 5000, 16)
				b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
				if work == 0 {
					noop = p99(lat)
				} else {
					slow = p99(lat)
				}
			})
		}
		// The rate of durable acknowledgements: the handler alone (its
		// workers elsewhere), against the engine's own limit with as many
		// clients as the handler has connections.
		for _, conns := range []int{16, 64} {
			b.Run(fmt.Sprintf("%s/accept/conns=%d", e.name, conns), func(b *testing.B) {
				if url == "" {
					b.Skipf("set %s to measure %s", e.env, e.name)
				}
				ns := fmt.Sprintf("QA%d_%d", run%1e9, conns)
				srv := ackServer(b, e.open(b, url, ns), 0, false)
				burst(b, srv.URL, ns+"_warm_", 200, conns)
				_, wall := burst(b, srv.URL, ns+"_", 5000, conns)
				rate := 5000 / wall.Seconds()
				// The floor of any HTTP endpoint on this engine: a bare
				// handler that reads the body and enqueues it, with no
				// verification, no parsing, no store.
				bare := bareServer(b, e.open(b, url, ns+"_BARE"))
				burst(b, bare.URL, ns+"_bare_warm_", 200, conns)
				_, bareWall := burst(b, bare.URL, ns+"_bare_", 5000, conns)
				bareRate := 5000 / bareWall.Seconds()
				limit := e.limit(b, url, ns, conns)
				b.ReportMetric(rate, "acks/s")
				b.ReportMetric(rate/limit, "of-limit")
				fmt.Printf("ratio queue %-9s %d conns: durable acks %.0f/s, engine limit (%d clients) %.0f/s: %.2f; a bare HTTP handler enqueueing %.0f/s: %.2f of the limit, the handler %.2f of it\n",
					e.name, conns, rate, conns, limit, rate/limit, bareRate, bareRate/limit, rate/bareRate)
			})
		}
		if noop > 0 && slow > 0 {
			fmt.Printf("ratio queue %-9s p99 to 200: 100 ms callbacks %v, no-op %v: %.2fx\n", e.name, slow.Round(time.Millisecond), noop.Round(time.Millisecond), float64(slow)/float64(noop))
		}
	}
}

// BenchmarkQueueHandle: allocations and time of the request path without
// HTTP (Handle) in the asynchronous mode, per engine, against the
// synchronous in-memory path in the same run.
func BenchmarkQueueHandle(b *testing.B) {
	base := webhooktest.Fixture(b, "payment_intent.succeeded")
	run := time.Now().UnixNano()
	build := func(b *testing.B, q stripewebhook.Queue) *stripewebhook.Handler {
		d := stripewebhook.NewDispatcher()
		d.HandleFunc("payment_intent.succeeded", func(context.Context, *stripewebhook.Event) error { return nil })
		opts := []stripewebhook.HandlerOption{stripewebhook.WithDedup(stripewebhook.NewMemoryStore(0, quietLogger())), quietLogger()}
		if q != nil {
			opts = append(opts, stripewebhook.WithQueue(q))
		}
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(benchSecret), opts...)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	bench := func(b *testing.B, h *stripewebhook.Handler, prefix string) {
		events := load.Sign(base, prefix, 20000, time.Now(), benchSecret)
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			e := &events[i%len(events)]
			if err := h.Handle(ctx, e.Payload, e.Header); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sync-memory", func(b *testing.B) { bench(b, build(b, nil), fmt.Sprintf("evt_qh_sync_%d_", run)) })
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			url := os.Getenv(e.env)
			if url == "" {
				b.Skipf("set %s to measure %s", e.env, e.name)
			}
			ns := fmt.Sprintf("QH%d", run%1e9)
			bench(b, build(b, e.open(b, url, ns)), ns+"_")
		})
	}
}
