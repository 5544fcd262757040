// Command recovery measures how long an event held by a worker that was
// killed (SIGKILL) takes to run again, with the default settings, on each
// engine whose URL is set: a worker process takes the event and hangs in
// its callback, it is killed, a second worker process starts, and the time
// from the kill to the second run is printed. The dedup store is Redis,
// shared by both, as several instances would share it: the killed worker's
// claim (DefaultLease) lapses as its delivery's visibility does.
//
//	STRIPEWEBHOOK_REDIS_URL=redis://127.0.0.1:6379/0 \
//	STRIPEWEBHOOK_NATS_URL=nats://127.0.0.1:4222 \
//	STRIPEWEBHOOK_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//	STRIPEWEBHOOK_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	go run ./bench/cmd/recovery                    # -engines jetstream,rabbitmq,river
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/queueurl"
	"github.com/stripewebhook/stripewebhook/redisstore"
)

const secret = "whsec_recovery_local"

var engines = []struct{ name, env string }{
	{"jetstream", "STRIPEWEBHOOK_NATS_URL"},
	{"rabbitmq", "STRIPEWEBHOOK_AMQP_URL"},
	{"river", "STRIPEWEBHOOK_POSTGRES_URL"},
}

func main() {
	child := flag.String("child", "", "run as a worker: hang (the callback never returns) or run")
	queue := flag.String("queue", "", "the queue URL (child)")
	ns := flag.String("ns", "", "the namespace (child)")
	only := flag.String("engines", "jetstream,rabbitmq,river", "the engines to measure, comma-separated")
	flag.Parse()
	if *child != "" {
		work(*child, *queue, *ns)
		return
	}
	if os.Getenv("STRIPEWEBHOOK_REDIS_URL") == "" {
		log.Fatal("recovery: set STRIPEWEBHOOK_REDIS_URL (the shared dedup store)")
	}
	for _, e := range engines {
		if !strings.Contains(","+*only+",", ","+e.name+",") {
			continue
		}
		raw := os.Getenv(e.env)
		if raw == "" {
			fmt.Printf("%-9s skipped: set %s\n", e.name, e.env)
			continue
		}
		ns := fmt.Sprintf("recovery_%s_%d", e.name, time.Now().UnixNano()%1e9)
		took, err := measure(withQueue(raw, ns), ns)
		cleanUp(e.name, raw, ns)
		if err != nil {
			log.Fatalf("%s: %v", e.name, err)
		}
		fmt.Printf("%-9s ran again %.1f s after the SIGKILL\n", e.name, took.Seconds())
	}
}

// withQueue names the queue ns in raw, as queueurl reads it.
func withQueue(raw, ns string) string {
	u, err := url.Parse(raw)
	if err != nil {
		log.Fatal(err)
	}
	q := u.Query()
	q.Set("queue", ns)
	u.RawQuery = q.Encode()
	return u.String()
}

// handler builds the application: invoice.paid runs fn; defaults
// everywhere but the store, Redis under ns.
func handler(ctx context.Context, queue, ns string, fn stripewebhook.Callback) (*stripewebhook.Handler, func()) {
	q, closeQ, err := queueurl.Open(ctx, queue)
	if err != nil {
		log.Fatal(err)
	}
	opt, err := redis.ParseURL(os.Getenv("STRIPEWEBHOOK_REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	rc := redis.NewClient(opt)
	store, err := redisstore.New(rc, redisstore.WithName(ns))
	if err != nil {
		log.Fatal(err)
	}
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", fn)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret), stripewebhook.WithQueue(q), stripewebhook.WithDedup(store),
		stripewebhook.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		log.Fatal(err)
	}
	return h, func() {
		closeQ()
		rc.Close()
	}
}

// work is a worker process: it prints "started" or "ran" with the time.
func work(mode, queue, ns string) {
	ctx := context.Background()
	h, done := handler(ctx, queue, ns, func(ctx context.Context, e *stripewebhook.Event) error {
		if mode == "hang" {
			fmt.Println("started", time.Now().UnixNano())
			select {}
		}
		fmt.Println("ran", time.Now().UnixNano())
		return nil
	})
	defer done()
	w, err := stripewebhook.NewWorker(h)
	if err != nil {
		log.Fatal(err)
	}
	w.Run(ctx)
}

// measure queues one event, has a worker take it and be killed, and times
// a second worker's run.
func measure(queue, ns string) (time.Duration, error) {
	ctx := context.Background()
	h, done := handler(ctx, queue, ns, func(context.Context, *stripewebhook.Event) error { return nil })
	defer done()
	payload, err := fixture.Load("invoice.paid", fixture.ID("evt_"+ns))
	if err != nil {
		return 0, err
	}
	if err := h.Handle(ctx, payload, fixture.Header(payload, time.Now(), secret)); err != nil {
		return 0, err
	}
	first, lines, err := start("hang", queue, ns)
	if err != nil {
		return 0, err
	}
	if _, err := await(lines, "started", time.Minute); err != nil {
		first.Process.Kill()
		return 0, err
	}
	first.Process.Kill()
	first.Wait()
	killed := time.Now()
	second, lines, err := start("run", queue, ns)
	if err != nil {
		return 0, err
	}
	defer func() { second.Process.Kill(); second.Wait() }()
	at, err := await(lines, "ran", 10*time.Minute)
	if err != nil {
		return 0, err
	}
	return at.Sub(killed), nil
}

func start(mode, queue, ns string) (*exec.Cmd, <-chan string, error) {
	cmd := exec.Command(os.Args[0], "-child", mode, "-queue", queue, "-ns", ns)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		io.Copy(io.Discard, out)
	}()
	return cmd, lines, nil
}

// await waits for a line "word <unix nanos>" and returns its time.
func await(lines <-chan string, word string, within time.Duration) (time.Time, error) {
	timeout := time.After(within)
	for {
		select {
		case l := <-lines:
			var ns int64
			if _, err := fmt.Sscanf(l, word+" %d", &ns); err == nil {
				return time.Unix(0, ns), nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("no %q within %v", word, within)
		}
	}
}

// cleanUp removes what the run left on the engine's server.
func cleanUp(engine, raw, ns string) {
	ctx := context.Background()
	if opt, err := redis.ParseURL(os.Getenv("STRIPEWEBHOOK_REDIS_URL")); err == nil {
		rc := redis.NewClient(opt)
		for it := rc.Scan(ctx, 0, ns+":*", 100).Iterator(); it.Next(ctx); {
			rc.Del(ctx, it.Val())
		}
		rc.Close()
	}
	switch engine {
	case "jetstream":
		if nc, err := nats.Connect(raw); err == nil {
			js, _ := jetstream.New(nc)
			js.DeleteStream(ctx, ns)
			js.DeleteStream(ctx, ns+"_DEAD")
			nc.Close()
		}
	case "rabbitmq":
		if q, closeQ, err := queueurl.OpenExisting(ctx, withQueue(raw, ns)); err == nil {
			if d, ok := q.(interface{ Delete(context.Context) error }); ok {
				d.Delete(ctx)
			}
			closeQ()
		}
	case "river":
		if p, err := pgxpool.New(ctx, raw); err == nil {
			p.Exec(ctx, `DELETE FROM river_job WHERE queue = $1`, strings.ToLower(ns))
			p.Close()
		}
	}
}
