package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stripe/stripe-go/v82"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/bench/internal/load"
	"github.com/stripewebhook/stripewebhook/pgstore"
	"github.com/stripewebhook/stripewebhook/redisstore"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// BenchmarkStores delivers unique payment_intent.succeeded events over HTTP
// (16 keep-alive connections, as a burst from Stripe would) to the handler
// with each dedup store, the in-memory one being the baseline of the same
// run, and runs pgbench (one INSERT per transaction, 16 clients) for the
// PostgreSQL server's own limit. It prints the ratios:
//
//	STRIPEWEBHOOK_REDIS_URL=redis://127.0.0.1:6379/0 \
//	STRIPEWEBHOOK_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	go test -run '^$' -bench Stores -benchtime 6000x -count 3 ./bench/
func BenchmarkStores(b *testing.B) {
	const conns = 16
	ctx := context.Background()
	stores := []struct {
		name string
		env  string
		open func(b *testing.B, url string) stripewebhook.Store
	}{
		{"memory", "", func(*testing.B, string) stripewebhook.Store { return stripewebhook.NewMemoryStore(0) }},
		{"redis", "STRIPEWEBHOOK_REDIS_URL", func(b *testing.B, url string) stripewebhook.Store {
			opt, err := redis.ParseURL(url)
			if err != nil {
				b.Fatal(err)
			}
			opt.PoolSize = conns
			c := redis.NewClient(opt)
			b.Cleanup(func() { c.Close() })
			s, err := redisstore.New(c)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", "STRIPEWEBHOOK_POSTGRES_URL", func(b *testing.B, url string) stripewebhook.Store {
			cfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxConns = conns
			p, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(p.Close)
			s, err := pgstore.New(p)
			if err == nil {
				err = s.Migrate(ctx)
			}
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	base := webhooktest.Fixture(b, "payment_intent.succeeded")
	rate := map[string]float64{}
	run := time.Now().UnixNano()
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			url := ""
			if st.env != "" {
				if url = os.Getenv(st.env); url == "" {
					b.Skipf("set %s to measure the %s store", st.env, st.name)
				}
			}
			d := stripewebhook.NewDispatcher()
			if err := stripewebhook.On(d, "payment_intent.succeeded", func(context.Context, *stripewebhook.Event, *stripe.PaymentIntent) error { return nil }); err != nil {
				b.Fatal(err)
			}
			h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(benchSecret), stripewebhook.WithDedup(st.open(b, url)),
				stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			client := load.Client(conns)
			prefix := fmt.Sprintf("evt_bench_%s_%d_%d_", st.name, run, b.N)
			events := load.Sign(base, prefix, b.N, time.Now(), benchSecret)
			if _, _, err := load.Fire(client, srv.URL, load.Sign(base, prefix+"warm_", 1000, time.Now(), benchSecret), conns); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			_, wall, err := load.Fire(client, srv.URL, events, conns)
			if err != nil {
				b.Fatal(err)
			}
			rate[st.name] = float64(b.N) / wall.Seconds()
			b.ReportMetric(rate[st.name], "events/s")
		})
	}
	b.Run("pgbench", func(b *testing.B) {
		url := os.Getenv("STRIPEWEBHOOK_POSTGRES_URL")
		if url == "" {
			b.Skip("set STRIPEWEBHOOK_POSTGRES_URL to measure the server with pgbench")
		}
		if b.N > 1 {
			rate["pgbench"] = pgbench(b, url, conns)
			b.ReportMetric(rate["pgbench"], "tps")
		}
	})
	mem := rate["memory"]
	for _, name := range []string{"redis", "postgres"} {
		if r := rate[name]; r > 0 && mem > 0 {
			fmt.Printf("ratio stores %-9s %7.0f events/s  memory %7.0f events/s  %s/memory %.2f\n", name, r, mem, name, r/mem)
		}
	}
	if pg, tps := rate["postgres"], rate["pgbench"]; pg > 0 && tps > 0 {
		fmt.Printf("ratio stores postgres  %7.0f events/s  pgbench %7.0f tps (one INSERT per transaction)  events/pgbench %.2f\n", pg, tps, pg/tps)
	}
}

// benchSecret signs the events of BenchmarkStores.
const benchSecret = "whsec_bench_stores"

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs one INSERT per transaction with clients connections for 5
// seconds and returns the transactions per second.
func pgbench(b *testing.B, url string, clients int) float64 {
	if _, err := exec.LookPath("pgbench"); err != nil {
		b.Skip("pgbench is not installed (PostgreSQL's client tools)")
	}
	ctx := context.Background()
	p, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Exec(ctx, `DROP TABLE IF EXISTS stripewebhook_pgbench; CREATE TABLE stripewebhook_pgbench (key text PRIMARY KEY, at timestamptz NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	defer p.Exec(ctx, `DROP TABLE stripewebhook_pgbench`)
	script, err := os.CreateTemp(b.TempDir(), "insert-*.sql")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(script, `INSERT INTO stripewebhook_pgbench VALUES (md5(random()::text || clock_timestamp()::text), now());`)
	script.Close()
	out, err := exec.Command("pgbench", "-n", "-c", strconv.Itoa(clients), "-j", "2", "-T", "5", "-f", script.Name(), url).CombinedOutput()
	if err != nil {
		b.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		b.Fatalf("pgbench printed no tps:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}
