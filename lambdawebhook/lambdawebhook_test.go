package lambdawebhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/lambdawebhook"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

type app struct {
	mu   sync.Mutex
	runs map[string]int
	fail map[string]bool
}

func (a *app) ran(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

func newApp(t *testing.T) (*app, *stripewebhook.Handler) {
	a := &app{runs: map[string]int{}, fail: map[string]bool{}}
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.fail[e.ID] {
			return errors.New("database down")
		}
		a.runs[e.ID]++
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations(fixture.Destination),
		stripewebhook.WithAWSAccounts(fixture.AWSAccount), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

func envelope(t *testing.T, id string) []byte {
	return webhooktest.EventBridge(t, webhooktest.Fixture(t, "invoice.paid", fixture.ID(id)))
}

// invoke calls fn as the Lambda runtime does: the payload decoded into its
// argument, the result encoded.
func invoke(t *testing.T, fn any, payload []byte) ([]byte, error) {
	return lambda.NewHandler(fn).Invoke(context.Background(), payload)
}

func TestEventBridge(t *testing.T) {
	a, h := newApp(t)
	fn, err := lambdawebhook.EventBridge(h)
	if err != nil {
		t.Fatal(err)
	}
	ev := envelope(t, "evt_lambda_eb")
	for range 3 { // at least once: three deliveries, one run
		if _, err := invoke(t, fn, ev); err != nil {
			t.Fatal(err)
		}
	}
	if a.ran("evt_lambda_eb") != 1 {
		t.Fatalf("ran %d times, want once", a.ran("evt_lambda_eb"))
	}
	// A failure is the invocation's error (Lambda retries it); so is an
	// event from another account, which never runs.
	a.fail["evt_lambda_fail"] = true
	if _, err := invoke(t, fn, envelope(t, "evt_lambda_fail")); err == nil {
		t.Fatal("a failed callback did not fail the invocation")
	}
	other, _ := fixture.EventBridge(webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_lambda_other")), fixture.Destination, "210987654321", fixture.AWSRegion, time.Now())
	if _, err := invoke(t, fn, other); err == nil || !strings.Contains(err.Error(), "210987654321") {
		t.Fatalf("another account's event: %v", err)
	}
	if a.ran("evt_lambda_other") != 0 {
		t.Fatal("an untrusted event ran")
	}
}

func sqsBatch(arn string, bodies ...[]byte) []byte {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m%d", i), Body: string(b), EventSourceARN: arn})
	}
	out, _ := json.Marshal(ev)
	return out
}

func failures(t *testing.T, out []byte) []string {
	var res events.SQSEventResponse
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range res.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestSQSPartialBatchFailures(t *testing.T) {
	a, h := newApp(t)
	fn, err := lambdawebhook.SQS(h)
	if err != nil {
		t.Fatal(err)
	}
	a.fail["evt_sqs_2"] = true
	batch := sqsBatch("arn:aws:sqs:us-east-1:123456789012:stripe", envelope(t, "evt_sqs_1"), envelope(t, "evt_sqs_2"), []byte(`not json`), envelope(t, "evt_sqs_4"))
	out, err := invoke(t, fn, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, out); strings.Join(got, ",") != "m1,m2" {
		t.Fatalf("batch item failures %v, want [m1 m2]: only the failed ones come back", got)
	}
	if a.ran("evt_sqs_1") != 1 || a.ran("evt_sqs_4") != 1 {
		t.Fatal("the messages that could run did not")
	}
	// The failed one comes back, now passing; the others, delivered again,
	// do not run again.
	delete(a.fail, "evt_sqs_2")
	out, err = invoke(t, fn, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, out); strings.Join(got, ",") != "m2" {
		t.Fatalf("second delivery: failures %v, want [m2]", got)
	}
	for _, id := range []string{"evt_sqs_1", "evt_sqs_2", "evt_sqs_4"} {
		if a.ran(id) != 1 {
			t.Fatalf("%s ran %d times, want once", id, a.ran(id))
		}
	}

	// FIFO: after the first failure, the rest of the batch fails too.
	a.fail["evt_fifo_1"] = true
	out, err = invoke(t, fn, sqsBatch("arn:aws:sqs:us-east-1:123456789012:stripe.fifo", envelope(t, "evt_fifo_0"), envelope(t, "evt_fifo_1"), envelope(t, "evt_fifo_2")))
	if err != nil {
		t.Fatal(err)
	}
	if got := failures(t, out); strings.Join(got, ",") != "m1,m2" || a.ran("evt_fifo_2") != 0 {
		t.Fatalf("FIFO failures %v, evt_fifo_2 ran %d: want [m1 m2], 0", got, a.ran("evt_fifo_2"))
	}
}

func TestNeedsPinnedDestinations(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lambdawebhook.SQS(h); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Fatalf("SQS without WithDestinations: %v", err)
	}
	if _, err := lambdawebhook.EventBridge(h); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Fatalf("EventBridge without WithDestinations: %v", err)
	}
}
