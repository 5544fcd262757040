// Command stripewebhook is the command line of the stripewebhook library:
// send signed events to an endpoint offline, replay what a downtime
// missed, check a webhook endpoint's configuration, and list and replay
// the asynchronous mode's dead letters.
//
//	stripewebhook send -url http://localhost:4242/webhook -secret whsec_… payment_intent.succeeded
//	STRIPE_API_KEY=sk_… stripewebhook replay -url https://example.com/webhook -secret whsec_… -since 72h
//	STRIPE_API_KEY=sk_… stripewebhook endpoints check -url https://example.com/webhook -types 'invoice.*,checkout.session.completed'
//	stripewebhook dead-letters list -queue nats://127.0.0.1:4222
//	stripewebhook dead-letters replay -queue postgres://…/app evt_1… evt_2…
//
// Run `stripewebhook COMMAND -h` for each command's flags. It exits 0 when
// every delivery got a 2xx, 1 when one did not or a request failed, and 2
// for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// errUsage marks a usage error (exit 2); its message has been printed.
var errUsage = errors.New("usage")

const usage = `usage: stripewebhook COMMAND [flags]

Commands:
  send     sign a fixture or a JSON file as Stripe does and POST it to an endpoint
  replay   list the events Stripe failed to deliver and deliver each, signed, to an endpoint
  endpoints check
           compare a webhook endpoint's enabled_events and API version with the handled types
  dead-letters list|replay
           list the events a Worker set aside after their last attempt, or queue them again

Run "stripewebhook COMMAND -h" for a command's flags.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "send":
		err = send(ctx, args[1:], getenv, stdout, stderr)
	case "replay":
		err = replay(ctx, args[1:], getenv, stdout, stderr)
	case "endpoints":
		err = endpoints(ctx, args[1:], getenv, stdout, stderr)
	case "dead-letters":
		err = deadLetters(ctx, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "stripewebhook: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errDrift):
		return 1
	}
	// The library's errors start with its name, which is the command's.
	fmt.Fprintln(stderr, "stripewebhook:", strings.TrimPrefix(err.Error(), "stripewebhook: "))
	return 1
}

// newFlags returns a command's flag set, printing its usage to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: stripewebhook %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags: a flag the command does not have, or a
// value it cannot take, is a usage error (exit 2), which flag has printed.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return errUsage
	}
	return err
}

// usageErr prints msg and the command's usage, and returns errUsage.
func usageErr(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "stripewebhook %s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}
