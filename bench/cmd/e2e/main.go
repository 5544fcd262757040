// Command e2e compares, over HTTP on loopback, the stripewebhook handler with
// the handler of Stripe's Go guide (io.ReadAll + webhook.ConstructEvent + a
// switch + json.Unmarshal of Data.Raw), and with a handler that only drains
// the body: the ceiling that net/http and the load generator set on this
// machine. Each handler runs in a process of its own, so that its peak
// memory (VmHWM) can be read. N distinct signed events are fired over C
// keep-alive connections at each handler in turn, round after round
// (A B C A B C …), and the program prints requests/s, p50 and p99 for each,
// and the ratios.
//
//	go run ./bench/cmd/e2e -payload invoice          # 6 KB invoice.paid, no callback for it
//	go run ./bench/cmd/e2e -payload invoice -typed   # a *stripe.Invoice callback in both
//	go run ./bench/cmd/e2e -payload invoice100       # 190 KB invoice.paid
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/bench/internal/load"
)

const secret = "whsec_e2e_benchmark"

var payloadFiles = map[string]string{
	"balance":    "balance.available.json",
	"invoice":    "invoice.paid.json",
	"invoice100": "invoice.paid.100-lines.json",
}

// serveEnv, in a child process, names the handler to serve.
const serveEnv = "STRIPEWEBHOOK_E2E_SERVE"

func main() {
	if kind := os.Getenv(serveEnv); kind != "" {
		serveChild(kind)
		return
	}
	n := flag.Int("n", 12000, "distinct events sent to each handler")
	c := flag.Int("c", 8, "keep-alive connections")
	rounds := flag.Int("rounds", 12, "rounds of A B C")
	payload := flag.String("payload", "invoice", "balance (0.8 KB), invoice (6 KB) or invoice100 (190 KB)")
	typed := flag.Bool("typed", false, "register an invoice.paid callback that decodes a *stripe.Invoice (else no callback handles the type)")
	dir := flag.String("testdata", "", "directory of the benchmark payloads (default: the module's testdata/bench)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of each handler's process to FILE.<handler>")
	flag.Parse()
	if err := run(os.Stdout, *n, *c, *rounds, *payload, *typed, *dir, *profile); err != nil {
		log.Fatal(err)
	}
}

// serveChild reads its settings from the environment its parent set.
func serveChild(kind string) {
	serveOne(kind, os.Getenv(serveEnv+"_TYPED") != "", os.Getenv(serveEnv+"_PROFILE"))
}

// serveOne runs in a child process until its stdin closes.
func serveOne(kind string, typed bool, profile string) {
	var h http.Handler
	switch kind {
	case "ours":
		d := stripewebhook.NewDispatcher()
		if typed {
			stripewebhook.On(d, "invoice.paid", func(_ context.Context, _ *stripewebhook.Event, inv *stripe.Invoice) error {
				if inv.ID == "" {
					return fmt.Errorf("empty invoice")
				}
				return nil
			})
		} else {
			stripewebhook.On(d, "payment_intent.succeeded", func(context.Context, *stripewebhook.Event, *stripe.PaymentIntent) error { return nil })
		}
		var err error
		h, err = stripewebhook.NewHandler(d, stripewebhook.Secrets(secret),
			stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			log.Fatal(err)
		}
	case "guide":
		h = guideHandler(typed)
	case "drain":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		})
	default:
		log.Fatalf("unknown handler %q", kind)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	if profile != "" {
		f, err := os.Create(profile + "." + kind)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		if profile != "" {
			pprof.StopCPUProfile()
		}
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, h))
}

// guideHandler is the handler of Stripe's Go guide, with two changes: a
// 1 MiB body cap instead of its 64 KiB (which rejects the 190 KB invoice),
// and no print for unhandled types (not to measure the terminal).
func guideHandler(typed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		const MaxBodyBytes = int64(1 << 20)
		req.Body = http.MaxBytesReader(w, req.Body, MaxBodyBytes)
		payload, err := io.ReadAll(req.Body)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		event, err := webhook.ConstructEvent(payload, req.Header.Get("Stripe-Signature"), secret)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch event.Type {
		case "payment_intent.succeeded":
			var paymentIntent stripe.PaymentIntent
			if err := json.Unmarshal(event.Data.Raw, &paymentIntent); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		case "invoice.paid":
			if typed {
				var invoice stripe.Invoice
				if err := json.Unmarshal(event.Data.Raw, &invoice); err != nil {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
			}
		default:
		}
		w.WriteHeader(http.StatusOK)
	}
}

type target struct {
	name string
	url  string
	cmd  *exec.Cmd
	in   io.WriteCloser
	lat  []time.Duration
	busy time.Duration
	sent int
}

func start(name string, typed bool, profile string) (*target, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+name, serveEnv+"_PROFILE="+profile)
	if typed {
		cmd.Env = append(cmd.Env, serveEnv+"_TYPED=1")
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%s did not start: %v", name, err)
	}
	return &target{name: name, url: "http://" + strings.TrimSpace(addr) + "/webhook", cmd: cmd, in: in}, nil
}

// peakRSS reads the child's high-water resident set size.
func (t *target) peakRSS() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

func run(out io.Writer, n, c, rounds int, payload string, typed bool, dir, profile string) error {
	file, ok := payloadFiles[payload]
	if !ok {
		return fmt.Errorf("-payload: %q is not balance, invoice or invoice100", payload)
	}
	if dir == "" {
		_, src, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(src), "..", "..", "..", "testdata", "bench")
	}
	base, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	now := time.Now()
	events := load.Sign(base, "evt_e2e_", n, now, secret)
	warm := load.Sign(base, "evt_e2e_warm_", 200, now, secret)

	var targets []*target
	for _, name := range []string{"ours", "guide", "drain"} {
		t, err := start(name, typed, profile)
		if err != nil {
			return err
		}
		defer func() { t.in.Close(); t.cmd.Wait() }()
		targets = append(targets, t)
	}
	client := load.Client(c)
	for _, t := range targets {
		if _, _, err := load.Fire(client, t.url, warm, c); err != nil {
			return fmt.Errorf("%s warm-up: %v", t.name, err)
		}
	}
	per := n / rounds
	for r := 0; r < rounds; r++ {
		chunk := events[r*per : (r+1)*per]
		for _, t := range targets {
			lat, busy, err := load.Fire(client, t.url, chunk, c)
			if err != nil {
				return fmt.Errorf("%s: %v", t.name, err)
			}
			t.lat, t.busy, t.sent = append(t.lat, lat...), t.busy+busy, t.sent+len(chunk)
		}
	}

	fmt.Fprintf(out, "payload %s (%d bytes), typed callback %v, %d events per handler over %d connections, %d rounds, GOMAXPROCS %d\n\n",
		file, len(base), typed, per*rounds, c, rounds, runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "%-8s %12s %10s %10s %12s\n", "handler", "requests/s", "p50", "p99", "peak RSS")
	rps := map[string]float64{}
	for _, t := range targets {
		sort.Slice(t.lat, func(i, j int) bool { return t.lat[i] < t.lat[j] })
		rps[t.name] = float64(t.sent) / t.busy.Seconds()
		fmt.Fprintf(out, "%-8s %12.0f %10s %10s %12s\n", t.name, rps[t.name],
			t.lat[len(t.lat)/2].Round(time.Microsecond), t.lat[len(t.lat)*99/100].Round(time.Microsecond), t.peakRSS())
	}
	fmt.Fprintf(out, "\nratio ours/ceiling %.2f   ours/guide %.2f   guide/ceiling %.2f\n",
		rps["ours"]/rps["drain"], rps["ours"]/rps["guide"], rps["guide"]/rps["drain"])
	return nil
}
