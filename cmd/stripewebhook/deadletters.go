package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/queueurl"
)

// errReplayFailed is the exit status of a replay that left events behind.
var errReplayFailed = errors.New("some dead letters were not replayed")

const deadLettersUsage = "usage: STRIPEWEBHOOK_QUEUE=URL stripewebhook dead-letters list|replay [flags]"

// deadLetters runs `dead-letters list` and `dead-letters replay`: the events
// a Worker set aside after their last attempt, on the queue the application
// uses.
func deadLetters(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprintln(stderr, deadLettersUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help") {
			return nil
		}
		return errUsage
	}
	cmd := args[0]
	synopsis := "dead-letters list [-json]  (STRIPEWEBHOOK_QUEUE=URL in the environment)"
	if cmd == "replay" {
		synopsis = "dead-letters replay (-all | EVENT_ID...)  (STRIPEWEBHOOK_QUEUE=URL in the environment)"
	}
	fs := newFlags("dead-letters "+cmd, synopsis, stderr)
	queueFlag := fs.String("queue", "", "the application's queue, "+queueurl.Syntax+" (better in "+queueEnv+": a password here is visible to every user of the machine)")
	var asJSON, all = new(bool), new(bool) // each command shows only its own flag
	if cmd == "list" {
		fs.BoolVar(asJSON, "json", false, "one JSON object a line")
	} else {
		fs.BoolVar(all, "all", false, "every dead letter")
	}
	if err := parse(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package said what is wrong, then the usage
	}
	queue := queueURL(*queueFlag, getenv, stderr)
	if queue == "" {
		return usageErr(fs, stderr, "the queue is required: %s=URL, or -queue", queueEnv)
	}
	ids := fs.Args()
	switch {
	case cmd == "list" && len(ids) > 0:
		return usageErr(fs, stderr, "list takes no event ids")
	case cmd == "replay" && *all == (len(ids) > 0):
		return usageErr(fs, stderr, "give the event ids to replay, or -all")
	}
	q, closeQueue, err := queueurl.OpenExisting(ctx, queue)
	if err != nil {
		return fmt.Errorf("-queue: %w", err)
	}
	defer closeQueue()
	if cmd == "list" {
		return listDeadLetters(ctx, q, *asJSON, stdout)
	}
	if *all {
		dead, err := q.DeadLetters(ctx)
		if err != nil {
			return err
		}
		for _, dl := range dead {
			ids = append(ids, dl.ID)
		}
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
		}
	}
	failed := 0
	for _, id := range ids {
		if err := q.Replay(ctx, id); err != nil {
			failed++
			fmt.Fprintf(stderr, "stripewebhook: %v\n", err)
			continue
		}
		fmt.Fprintf(stdout, "replayed %s\n", id)
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errReplayFailed, failed, len(ids))
	}
	return nil
}

// deadLetterLine is a dead letter as `list -json` prints it: what it is
// about and why it was set aside, not its payload.
type deadLetterLine struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Object   string    `json:"object"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
}

func listDeadLetters(ctx context.Context, q stripewebhook.Queue, asJSON bool, stdout io.Writer) error {
	dead, err := q.DeadLetters(ctx)
	if err != nil {
		return err
	}
	lines := make([]deadLetterLine, len(dead))
	for i, dl := range dead {
		lines[i] = deadLetterLine{ID: dl.ID, Type: "?", Object: dl.Key, Attempts: dl.Attempts, At: dl.At.UTC(), Reason: dl.Reason}
		if e, err := stripewebhook.ParseEvent(dl.Payload); err == nil {
			lines[i].Type = string(e.Type)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	if len(lines) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tOBJECT\tATTEMPTS\tSET ASIDE\tREASON")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Type, l.Object, l.Attempts, l.At.Format(time.RFC3339), l.Reason)
	}
	return tw.Flush()
}
