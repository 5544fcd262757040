package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// send signs a fixture, a file or a flow and POSTs it, like `stripe
// trigger` but offline and signed with the secret given: the event is new
// (a fresh id, created now), and a non-2xx is retried as Stripe retries,
// on a compressed schedule.
func send(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("send", "send -url URL [flags] TYPE|FILE|-flow NAME  (STRIPE_WEBHOOK_SECRET in the environment)", stderr)
	endpoint := fs.String("url", "", "the endpoint to POST to (required, but with -sqs)")
	secretFlag, secretFile := secretFlags(fs)
	times := fs.Int("times", 1, "deliver the same event `N` times (Stripe may deliver an event more than once)")
	account := fs.String("account", "", "a connected account `acct_…`: the event comes from it (Connect; a thin event's context)")
	livemode := fs.Bool("livemode", false, "send a live-mode event")
	at := fs.String("at", "", "sign at `TIME`: RFC 3339, or an offset from now such as -10m (default now)")
	created := fs.String("created", "", "the event's created `TIME`, as -at (default now; a flow's last event)")
	id := fs.String("id", "", "the event id (default: a new evt_… for each send)")
	var sets setFlags
	fs.Var(&sets, "set", "set a field of data.object, `data.object.PATH=VALUE` (VALUE as JSON, else a string); repeatable")
	retries := fs.Int("retries", 3, "retry a non-2xx `N` times, 1 s, 2 s, 4 s … apart (Stripe's schedule, compressed; 0: none)")
	flow := fs.String("flow", "", "send a lifecycle instead of one event: `subscription` (checkout, trial, invoices, renewal failure, cancellation)")
	order := fs.String("order", "in", "a flow's delivery `order`: in, shuffled or reversed")
	seed := fs.Uint64("seed", 0, "the seed of -order shuffled (default: a new one, printed)")
	bus := busFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: STRIPE_WEBHOOK_SECRET=whsec_… stripewebhook send -url URL [flags] TYPE|FILE\n"+
			"       STRIPE_WEBHOOK_SECRET=whsec_… stripewebhook send -url URL -flow subscription [-order shuffled|reversed] [-seed N]\n"+
			"       stripewebhook send -envelope eventbridge -sqs QUEUE_URL [flags] TYPE|FILE|-flow NAME   (EventBridge through SQS)\n"+
			"       STRIPE_EVENTGRID_SECRET=… stripewebhook send -envelope eventgrid -url URL [flags] TYPE|FILE|-flow NAME\n\n"+
			"TYPE is a fixture: %s.\nFILE is a JSON event of your own.\n\nFlags:\n", strings.Join(fixture.Names(), ", "))
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *flow == "" && fs.NArg() != 1:
		return usageErr(fs, stderr, "one TYPE or FILE is required")
	case *flow != "" && fs.NArg() != 0:
		return usageErr(fs, stderr, "-flow sends its own events: no TYPE or FILE with it")
	case *flow != "" && *flow != "subscription":
		return usageErr(fs, stderr, "-flow: unknown flow %q (have: subscription)", *flow)
	case *flow != "" && (*id != "" || len(sets) > 0):
		return usageErr(fs, stderr, "-id and -set apply to one event, not to a flow")
	}
	if err := bus.check(*endpoint); err != nil {
		return usageErr(fs, stderr, "%v", err)
	}
	if u, err := url.Parse(*endpoint); bus.sqs == "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return usageErr(fs, stderr, "-url must be an http(s) URL, such as http://localhost:4242/webhook")
	}
	var secret string
	if bus.envelope == "" { // an envelope is not signed
		var err error
		if secret, err = endpointSecret(*secretFlag, *secretFile, getenv, stderr); err != nil {
			return err
		}
		if err := checkSecret(secret); err != nil {
			return usageErr(fs, stderr, "%v", err)
		}
	}
	if *times < 1 {
		return usageErr(fs, stderr, "-times must be at least 1")
	}
	if *retries < 0 {
		return usageErr(fs, stderr, "-retries must not be negative")
	}
	now := time.Now()
	signAt, err := parseAt(*at, now)
	if err != nil {
		return usageErr(fs, stderr, "-at: %v", err)
	}
	createdAt, err := parseAt(*created, now)
	if err != nil {
		return usageErr(fs, stderr, "-created: %v", err)
	}
	var common []fixture.Edit
	if *account != "" {
		common = append(common, fixture.Account(*account))
	}
	if *livemode {
		common = append(common, fixture.Livemode(true))
	}
	var events []namedEvent
	if *flow != "" {
		if events, err = subscriptionFlow(createdAt, *order, seed, isSet(fs, "seed"), common, stdout); err != nil {
			return usageErr(fs, stderr, "%v", err)
		}
	} else {
		edits := append([]fixture.Edit{fixture.ID(cmp.Or(*id, newEventID())), fixture.Created(createdAt.Unix())}, common...)
		edits = append(edits, sets.edits()...)
		payload, err := loadEvent(fs.Arg(0), edits)
		if err != nil {
			return err
		}
		events = []namedEvent{{fs.Arg(0), payload}}
	}
	if events, err = bus.wrap(events, now); err != nil {
		return err
	}
	var d sender = newDeliverer(*endpoint, secret, bus.bearer(getenv))
	if bus.sqs != "" {
		if d, err = newSQSSender(ctx, bus.sqs); err != nil {
			return err
		}
	}
	failed, sent := 0, 0
	for _, ev := range events {
		for range *times {
			ok, err := d.deliverRetrying(ctx, ev, signAt, *retries, stdout)
			if err != nil {
				return err
			}
			sent++
			if !ok {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries did not get a 2xx", failed, sent)
	}
	return nil
}

// isSet reports whether the flag name was given.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// namedEvent is a payload to send and what to call it in the output.
type namedEvent struct {
	name    string
	payload []byte
}

// subscriptionFlow is fixture.SubscriptionFlow ending at end, with fresh
// event ids (each run is new events, as each `stripe trigger` is), in the
// order asked.
func subscriptionFlow(end time.Time, order string, seed *uint64, seeded bool, edits []fixture.Edit, stdout io.Writer) ([]namedEvent, error) {
	flow, err := fixture.SubscriptionFlow(end)
	if err != nil {
		return nil, err
	}
	var ord fixture.Order
	switch order {
	case "in":
		ord = fixture.InOrder
	case "reversed":
		ord = fixture.Reversed
	case "shuffled":
		if !seeded {
			*seed = mathrand.Uint64()
		}
		fmt.Fprintf(stdout, "-order shuffled -seed %d\n", *seed)
		ord = fixture.Shuffled(*seed)
	default:
		return nil, fmt.Errorf("-order: %q is not in, shuffled or reversed", order)
	}
	run := newEventID()[len("evt_cli_"):][:8]
	var events []namedEvent
	for _, payload := range ord(flow) {
		var ev struct{ ID, Type string }
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, err
		}
		if payload, err = fixture.Apply(payload, append([]fixture.Edit{fixture.ID(ev.ID + "_" + run)}, edits...)...); err != nil {
			return nil, err
		}
		events = append(events, namedEvent{ev.Type, payload})
	}
	return events, nil
}

// setFlags collects -set data.object.PATH=VALUE.
type setFlags []fixture.Edit

func (s *setFlags) String() string { return "" }

func (s *setFlags) Set(v string) error {
	path, value, ok := strings.Cut(v, "=")
	field, inObject := strings.CutPrefix(path, "data.object.")
	if !ok || !inObject || field == "" {
		return fmt.Errorf("%q is not data.object.PATH=VALUE", v)
	}
	var parsed any = value
	if json.Valid([]byte(value)) {
		_ = json.Unmarshal([]byte(value), &parsed)
	}
	*s = append(*s, fixture.ObjectField(field, parsed))
	return nil
}

func (s setFlags) edits() []fixture.Edit { return s }

// loadEvent reads a fixture by name, or a JSON file, with edits applied.
func loadEvent(arg string, edits []fixture.Edit) ([]byte, error) {
	if strings.HasSuffix(arg, ".json") || strings.ContainsRune(arg, os.PathSeparator) {
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, err
		}
		out, err := fixture.Apply(b, edits...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		return out, nil
	}
	return fixture.Load(arg, edits...)
}

// parseAt reads -at: empty (now), RFC 3339, or an offset from now.
func parseAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor an offset such as -10m", s)
	}
	return now.Add(d), nil
}

// newEventID returns a fresh evt_ id, as each `stripe trigger` makes a new
// event.
func newEventID() string {
	var b [12]byte
	rand.Read(b[:])
	return "evt_cli_" + hex.EncodeToString(b[:])
}
