package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// send signs a fixture or a file and POSTs it, like `stripe trigger` but
// offline and signed with the secret given.
func send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("send", "send -url URL -secret whsec_… [flags] TYPE|FILE", stderr)
	endpoint := fs.String("url", "", "the endpoint to POST to (required)")
	secret := fs.String("secret", "", "the endpoint's signing secret, whsec_… (required)")
	times := fs.Int("times", 1, "deliver the same event `N` times (Stripe may deliver an event more than once)")
	account := fs.String("account", "", "a connected account `acct_…`: the event comes from it (Connect; a thin event's context)")
	livemode := fs.Bool("livemode", false, "send a live-mode event")
	at := fs.String("at", "", "sign at `TIME`: RFC 3339, or an offset from now such as -10m (default now)")
	id := fs.String("id", "", "the event id (default: a new evt_… for each send)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: stripewebhook send -url URL -secret whsec_… [flags] TYPE|FILE\n\n"+
			"TYPE is a fixture: %s.\nFILE is a JSON event of your own.\n\nFlags:\n", strings.Join(fixture.Names(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr(fs, stderr, "one TYPE or FILE is required")
	}
	if u, err := url.Parse(*endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr(fs, stderr, "-url must be an http(s) URL, such as http://localhost:4242/webhook")
	}
	if err := checkSecret(*secret); err != nil {
		return usageErr(fs, stderr, "%v", err)
	}
	if *times < 1 {
		return usageErr(fs, stderr, "-times must be at least 1")
	}
	signAt, err := parseAt(*at, time.Now())
	if err != nil {
		return usageErr(fs, stderr, "-at: %v", err)
	}
	edits := []fixture.Edit{fixture.ID(*id)}
	if *id == "" {
		edits[0] = fixture.ID(newEventID())
	}
	if *account != "" {
		edits = append(edits, fixture.Account(*account))
	}
	if *livemode {
		edits = append(edits, fixture.Livemode(true))
	}
	payload, err := loadEvent(fs.Arg(0), edits)
	if err != nil {
		return err
	}
	d := newDeliverer(*endpoint, *secret)
	failed := 0
	for range *times {
		status, body, err := d.deliver(ctx, payload, signAt)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %d %s\n", fs.Arg(0), status, body)
		if status < 200 || status > 299 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries did not get a 2xx", failed, *times)
	}
	return nil
}

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
