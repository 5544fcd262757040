package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/queuetest"
	"github.com/stripewebhook/stripewebhook/queueurl"
	"github.com/stripewebhook/stripewebhook/queueurl/queueurltest"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// setAside puts an invoice.paid event in the dead letter of the queue that
// url names, as a Worker does after the last attempt, and returns its id.
func setAside(t *testing.T, url, reason string) string {
	t.Helper()
	ctx := context.Background()
	q, closeQ, err := queueurl.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQ()
	id := strings.ReplaceAll(queuetest.Namespace(t), "QT", "evt_")
	payload := webhooktest.Fixture(t, "invoice.paid", fixture.ID(id))
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: id, Key: "in_" + id, Secret: "main", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	for {
		d, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d.Message().ID != id { // left by an earlier run
			d.Ack(ctx)
			continue
		}
		if err := d.DeadLetter(ctx, reason); err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// testDeadLetters lists and replays dead letters through the built command
// on the queue that url names.
func testDeadLetters(t *testing.T, url string) {
	first := setAside(t, url, "callback: card_declined")
	second := setAside(t, url, "callback: timeout")

	code, out, errOut := runBinary(t, nil, "dead-letters", "list", "-queue", url)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"EVENT", first, second, "invoice.paid", "callback: card_declined", "callback: timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("list does not show %q:\n%s", want, out)
		}
	}
	code, out, errOut = runBinary(t, []string{"STRIPEWEBHOOK_QUEUE=" + url}, "dead-letters", "list", "-json")
	if code != 0 {
		t.Fatalf("list -json: exit %d: %s", code, errOut)
	}
	var lines []deadLetterLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var dl deadLetterLine
		if err := json.Unmarshal([]byte(l), &dl); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, dl)
	}
	if len(lines) != 2 || lines[0].ID != first || lines[0].Type != "invoice.paid" || lines[0].Object == "" ||
		lines[0].Attempts != 1 || lines[0].At.IsZero() || lines[0].Reason != "callback: card_declined" {
		t.Fatalf("list -json: %+v", lines)
	}

	code, out, errOut = runBinary(t, nil, "dead-letters", "replay", "-queue", url, first, "evt_none")
	if code != 1 || out != "replayed "+first+"\n" || !strings.Contains(errOut, "evt_none") || !strings.Contains(errOut, "1 of 2") {
		t.Fatalf("replay: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runBinary(t, nil, "dead-letters", "replay", "-queue", url, "-all")
	if code != 0 || out != "replayed "+second+"\n" {
		t.Fatalf("replay -all: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runBinary(t, nil, "dead-letters", "list", "-queue", url)
	if code != 0 || out != "no dead letters\n" {
		t.Fatalf("list after the replays: exit %d, %q", code, out)
	}

	// Both are queued again, for a worker to run.
	ctx := context.Background()
	q, closeQ, err := queueurl.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer closeQ()
	got := map[string]bool{}
	for len(got) < 2 {
		d, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[d.Message().ID] = true
		d.Ack(ctx)
	}
	if !got[first] || !got[second] {
		t.Fatalf("received %v", got)
	}
}

func TestDeadLetters(t *testing.T) {
	for _, engine := range queueurltest.Engines {
		t.Run(engine, func(t *testing.T) { testDeadLetters(t, queueurltest.Fresh(t, engine)) })
	}
}

func TestDeadLettersUsage(t *testing.T) {
	for _, args := range [][]string{
		{"dead-letters"},
		{"dead-letters", "drop"},
		{"dead-letters", "list"},
		{"dead-letters", "list", "-queue", "sqlite://x.db", "evt_1"},
		{"dead-letters", "replay", "-queue", "sqlite://x.db"},
		{"dead-letters", "replay", "-queue", "sqlite://x.db", "-all", "evt_1"},
		{"dead-letters", "list", "-queue", "sqlite://x.db", "-all"},
		{"dead-letters", "replay", "-queue", "sqlite://x.db", "-json", "evt_1"},
	} {
		if code, _, errOut := runBinary(t, nil, args...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	// Each command's -h shows its own flags only.
	for cmd, flags := range map[string][2]string{"list": {"-json", "-all"}, "replay": {"-all", "-json"}} {
		code, _, errOut := runBinary(t, nil, "dead-letters", cmd, "-h")
		if code != 0 || !strings.Contains(errOut, flags[0]) || strings.Contains(errOut, flags[1]) {
			t.Errorf("dead-letters %s -h: exit %d, want %s and not %s:\n%s", cmd, code, flags[0], flags[1], errOut)
		}
	}
	code, _, errOut := runBinary(t, nil, "dead-letters", "list", "-queue", "nats://u:hunter2@127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "-queue: NATS at") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("unreachable queue: exit %d, %q", code, errOut)
	}
}
