// Command basic is the webhook endpoint of Stripe's guide, on stripewebhook:
// it serves POST /webhook, verifies each delivery with the secret(s) in
// STRIPE_WEBHOOK_SECRET (comma-separated while one is rolled), drops
// duplicates, and prints a line per event. Its http.Server sets every
// timeout (see newServer): copy it.
//
//	export STRIPE_WEBHOOK_SECRET=whsec_…   # printed by `stripe listen`
//	go run ./examples/basic                # then: stripe listen --forward-to localhost:4242/webhook
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v82"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/eventgridwebhook"
	"github.com/stripewebhook/stripewebhook/otelwebhook"
	"github.com/stripewebhook/stripewebhook/pgstore"
	"github.com/stripewebhook/stripewebhook/queueurl"
	"github.com/stripewebhook/stripewebhook/redisstore"
	"github.com/stripewebhook/stripewebhook/sqlitestore"
	"github.com/stripewebhook/stripewebhook/sqswebhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// errNoSecret explains how to get a secret.
var errNoSecret = errors.New(`STRIPE_WEBHOOK_SECRET is not set.
For local testing, run:  stripe listen --forward-to localhost:4242/webhook
and export the whsec_… secret it prints. In production, use the endpoint's
signing secret from the Dashboard (Developers → Webhooks)`)

// run serves until ctx is done. It prints "listening on ADDR" once the port
// is open.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":4242", "address to listen on")
	dedup := fs.String("dedup", "", "dedup store: memory, redis://host:port/db or postgres://user@host:port/db (shared by replicas), or sqlite://PATH (one machine; default: the queue's file with -queue sqlite://, memory otherwise). Better in "+dedupEnv+", which no other user sees")
	readTimeout := fs.Duration("read-timeout", 15*time.Second, "time to read a whole request, body included (Stripe sends it at once)")
	idleTimeout := fs.Duration("idle-timeout", 60*time.Second, "how long an idle keep-alive connection is kept")
	grace := fs.Duration("grace", 10*time.Second, "on SIGTERM, how long deliveries in flight may finish before the rest are cut")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (empty: none)")
	queueURL := fs.String("queue", "", "asynchronous mode: a durable queue, "+queueurl.Syntax+"; the process serves the endpoint and runs workers (empty: synchronous). Better in "+queueEnv+", which no other user sees")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS (TLS 1.2 or 1.3) with this certificate `file` (PEM), with -tls-key")
	tlsKey := fs.String("tls-key", "", "the certificate's private key `file` (PEM)")
	allowIPs := fs.String("allow-ips", "", "accept deliveries only from these sources: stripe (Stripe's webhook addresses) and/or CIDRs, comma-separated (empty: any)")
	maxInFlight := fs.Int64("max-bytes-in-flight", stripewebhook.DefaultMaxBytesInFlight, "the body bytes all deliveries may hold together; past it, 503 and Stripe retries")
	trustedProxies := fs.String("trusted-proxies", "", "CIDRs of the load balancers or proxies in front, whose X-Forwarded-For or Forwarded names the client")
	sqsURL := fs.String("sqs", "", "also consume the EventBridge events of Stripe's event destination from this SQS queue `URL` (AWS endpoint and credentials from the SDK's environment: AWS_REGION, AWS_ENDPOINT_URL_SQS, AWS_ACCESS_KEY_ID, …)")
	eventGrid := fs.String("eventgrid", "", "also serve Azure Event Grid's deliveries on this `path` (e.g. /eventgrid), authenticated by the shared secret in "+eventGridEnv)
	destinations := fs.String("destinations", "", "the event destinations (ed_…, comma-separated) whose events -sqs and -eventgrid take")
	awsAccounts := fs.String("aws-accounts", "", "with -sqs: the AWS accounts (comma-separated) whose EventBridge events to take (empty: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*sqsURL != "" || *eventGrid != "") && *destinations == "" {
		return errors.New("-sqs and -eventgrid take events that carry no Stripe signature: name the event destinations to trust with -destinations ed_…")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	*queueURL = urlFlagOrEnv("-queue", *queueURL, queueEnv, getenv, stderr)
	*dedup = urlFlagOrEnv("-dedup", *dedup, dedupEnv, getenv, stderr)
	if *dedup == "" && strings.HasPrefix(*queueURL, "sqlite:") {
		// One machine as exact as several: what ran is kept in the
		// queue's file, where a crash loses neither.
		*dedup = *queueURL
	}
	*dedup = cmp.Or(*dedup, "memory")
	opts := []stripewebhook.HandlerOption{stripewebhook.WithMaxBytesInFlight(*maxInFlight)}
	if *destinations != "" {
		opts = append(opts, stripewebhook.WithDestinations(list(*destinations)...))
	}
	if *awsAccounts != "" {
		opts = append(opts, stripewebhook.WithAWSAccounts(list(*awsAccounts)...))
	}
	if *allowIPs != "" {
		f, err := sourceFilter(*allowIPs, *trustedProxies)
		if err != nil {
			return err
		}
		opts = append(opts, stripewebhook.WithSourceFilter(f))
	} else if *trustedProxies != "" {
		return errors.New("-trusted-proxies needs -allow-ips")
	}
	if *metricsAddr != "" {
		obs, stopMetrics, err := serveMetrics(*metricsAddr, stdout)
		if err != nil {
			return err
		}
		defer stopMetrics()
		opts = append(opts, stripewebhook.WithObserver(obs))
	}
	store, closeStore, err := openStore(ctx, *dedup, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	opts = append(opts, stripewebhook.WithDedup(store))
	var q stripewebhook.Queue
	if *queueURL != "" {
		var closeQueue func()
		if q, closeQueue, err = queueurl.Open(ctx, *queueURL); err != nil {
			return fmt.Errorf("-queue: %w", err)
		}
		defer closeQueue()
		opts = append(opts, stripewebhook.WithQueue(q))
	}
	h, _, err := newHandler(getenv("STRIPE_WEBHOOK_SECRET"), stdout, stderr, opts...)
	if err != nil {
		return err
	}
	if q != nil {
		w, err := stripewebhook.NewWorker(h, stripewebhook.WithDrainTimeout(*grace)) // h's store, logger and observer
		if err != nil {
			return err
		}
		workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
		workerDone := make(chan error, 1)
		go func() { workerDone <- w.Run(workerCtx) }()
		defer func() { stopWorker(); <-workerDone }() // after the server: drain what was taken
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", h)
	if *eventGrid != "" {
		eg, err := eventgridwebhook.New(h, getenv(eventGridEnv))
		if err != nil {
			return fmt.Errorf("-eventgrid (%s): %w", eventGridEnv, err)
		}
		mux.Handle(*eventGrid, eg)
	}
	if *sqsURL != "" {
		stopSQS, err := consumeSQS(ctx, h, *sqsURL, *grace, stdout)
		if err != nil {
			return err
		}
		defer stopSQS() // after the server, like the worker
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := newServer(mux, *readTimeout, *idleTimeout)
	scheme := "http"
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}} // Stripe: TLS 1.2 or 1.3
		ln, scheme = tls.NewListener(ln, srv.TLSConfig), "https"
	}
	fmt.Fprintf(stdout, "listening on %s: POST %s://…/webhook\n", ln.Addr(), scheme)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		// Connections still busy after the grace period (a client that
		// never finishes its body) are cut: their deliveries were not
		// acknowledged, so Stripe retries them.
		fmt.Fprintf(stderr, "shutdown: %v; closing the remaining connections\n", err)
		return srv.Close()
	}
	return nil
}

// queueEnv and dedupEnv are where the queue's and the store's URLs, which
// may hold a password, are read from when -queue and -dedup are not given:
// a flag is in the process's arguments, which every user of the machine
// sees (ps).
const (
	queueEnv = "STRIPEWEBHOOK_QUEUE"
	dedupEnv = "STRIPEWEBHOOK_DEDUP"
)

// eventGridEnv holds the secret Event Grid's deliveries present.
const eventGridEnv = "STRIPE_EVENTGRID_SECRET"

// consumeSQS runs an SQS consumer of queueURL into h until stop.
func consumeSQS(ctx context.Context, h *stripewebhook.Handler, queueURL string, grace time.Duration, stdout io.Writer) (stop func(), err error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("-sqs: %w", err)
	}
	c, err := sqswebhook.New(h, sqs.NewFromConfig(cfg), queueURL, sqswebhook.WithDrainTimeout(grace))
	if err != nil {
		return nil, fmt.Errorf("-sqs: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	fmt.Fprintf(stdout, "consuming EventBridge events from %s\n", queueURL)
	return func() { cancel(); <-done }, nil
}

// list splits a comma-separated flag.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// urlFlagOrEnv returns a URL flag's value, or the environment variable's
// when the flag is empty; a password given in the flag works, with a
// warning.
func urlFlagOrEnv(flagName, value, env string, getenv func(string) string, stderr io.Writer) string {
	if value == "" {
		return getenv(env)
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			fmt.Fprintf(stderr, "warning: the password in %s is visible to every user of this machine (ps); set %s instead\n", flagName, env)
		}
	}
	return value
}

// sourceFilter builds -allow-ips' filter: "stripe" for Stripe's webhook
// addresses, and CIDRs, comma-separated.
func sourceFilter(allow, proxies string) (*stripewebhook.SourceFilter, error) {
	var allowed []string
	for _, s := range list(allow) {
		if s == "stripe" {
			allowed = append(allowed, stripewebhook.StripeWebhookIPs...)
		} else {
			allowed = append(allowed, s)
		}
	}
	f, err := stripewebhook.NewSourceFilter(allowed, list(proxies))
	if err != nil {
		return nil, fmt.Errorf("-allow-ips, -trusted-proxies: %w", err)
	}
	return f, nil
}

// serveMetrics serves the handler's OpenTelemetry metrics in Prometheus's
// format at http://addr/metrics, and returns the observer that records them.
func serveMetrics(addr string, stdout io.Writer) (stripewebhook.Observer, func(), error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	obs, err := otelwebhook.New(otelwebhook.WithMeterProvider(mp))
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := newServer(mux, 15*time.Second, 60*time.Second)
	go srv.Serve(ln)
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", ln.Addr())
	return obs, func() { srv.Close(); mp.Shutdown(context.Background()) }, nil
}

// newServer is the http.Server to copy for a webhook endpoint: every
// timeout set, so that slow or idle clients cannot hold connections (and
// memory) for ever.
func newServer(h http.Handler, readTimeout, idleTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,                  // the whole request: Stripe sends the body at once
		WriteTimeout:      readTimeout + 30*time.Second, // longer than the slowest callback
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    32 << 10, // Stripe's headers are a few hundred bytes
	}
}

// newHandler builds the endpoint: the two events of the guide, a
// subscription's state, and a line for every other type.
func newHandler(secretEnv string, stdout, stderr io.Writer, opts ...stripewebhook.HandlerOption) (*stripewebhook.Handler, *stripewebhook.Dispatcher, error) {
	secrets := stripewebhook.Secrets(secretEnv) // comma-separated while one is rolled
	if len(secrets) == 0 {
		return nil, nil, errNoSecret
	}

	out := &lineWriter{w: stdout}
	d := stripewebhook.NewDispatcher()
	err := errors.Join(
		stripewebhook.On(d, "payment_intent.succeeded", func(ctx context.Context, e *stripewebhook.Event, pi *stripe.PaymentIntent) error {
			// Then define and call a function to handle the successful payment
			// intent: handlePaymentIntentSucceeded(pi).
			out.println("PaymentIntent was successful!")
			return nil
		}),
		stripewebhook.On(d, "payment_method.attached", func(ctx context.Context, e *stripewebhook.Event, pm *stripe.PaymentMethod) error {
			// handlePaymentMethodAttached(pm)
			out.println("PaymentMethod was attached to a Customer!")
			return nil
		}),
		// A state sync: what the application keeps of a subscription. Stripe
		// delivers out of order, so it is registered with OnLatest: a snapshot
		// older than one already applied is skipped (the log says so).
		stripewebhook.OnLatest(d, "customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event, sub *stripe.Subscription) error {
			out.println(fmt.Sprintf("Subscription %s is %s", sub.ID, sub.Status))
			return nil
		}),
		d.Fallback(func(ctx context.Context, e *stripewebhook.Event) error {
			out.println("Unhandled event type: " + string(e.Type))
			return nil
		}),
	)
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// A subscription's events (its invoices and checkout session too) run
	// one at a time, on every replica.
	opts = append([]stripewebhook.HandlerOption{stripewebhook.WithLogger(logger), stripewebhook.WithLockKey(stripewebhook.SubscriptionKey)}, opts...)
	h, err := stripewebhook.NewHandler(d, secrets, opts...)
	return h, d, err
}

// openStore opens the dedup store that -dedup names.
func openStore(ctx context.Context, url string, stderr io.Writer) (stripewebhook.Store, func(), error) {
	switch {
	case url == "memory":
		return stripewebhook.NewMemoryStore(0), func() {}, nil
	case strings.HasPrefix(url, "redis://") || strings.HasPrefix(url, "rediss://"):
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		client := redis.NewClient(opt)
		if err := client.Ping(ctx).Err(); err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("-dedup: Redis at %s: %w", opt.Addr, err)
		}
		store, err := redisstore.New(client)
		if err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		if ok, err := store.Persistent(ctx); err == nil && !ok {
			fmt.Fprintf(stderr, "warning: -dedup: Redis at %s keeps nothing on disk (no append-only file, no RDB save points): "+
				"restarted, it forgets the events done, and their late duplicates run again (set appendonly yes)\n", opt.Addr)
		}
		return store, func() { client.Close() }, nil
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		// Each delivery in flight holds a connection for one statement at
		// a time: the pool is sized for them.
		cfg, err := queueurl.PoolConfig(url)
		if err != nil {
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		store, err := pgstore.New(pool)
		if err == nil {
			err = store.Migrate(ctx)
		}
		if err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		return store, pool.Close, nil
	case strings.HasPrefix(url, "sqlite:"):
		db, path, err := queueurl.SQLite(url)
		if err != nil {
			return nil, nil, fmt.Errorf("-dedup: %w", err)
		}
		store, err := sqlitestore.New(db)
		if err == nil {
			err = store.Migrate(ctx)
		}
		if err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("-dedup: SQLite file %s: %w", path, err)
		}
		return store, func() { db.Close() }, nil
	}
	return nil, nil, fmt.Errorf("-dedup: %q is not memory, redis://…, postgres://… or sqlite://…", url)
}

// lineWriter serialises the lines of concurrent deliveries.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) println(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, s)
}
