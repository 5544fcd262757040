package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/eventgridwebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/sqswebhook/sqswebhooktest"
)

const gridSecret = "send-test-eventgrid-shared-secret"

// An Event Grid CloudEvent posted with the bearer token runs through
// eventgridwebhook; without the secret it is refused (401), and send
// says so.
func TestSendEventGridEnvelope(t *testing.T) {
	var mu sync.Mutex
	var origins []*stripewebhook.Origin
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		mu.Lock()
		defer mu.Unlock()
		origins = append(origins, e.Origin)
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations("ed_test_send"), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	eg, err := eventgridwebhook.New(h, gridSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(eg)
	defer srv.Close()
	code, out, errOut := runBinary(t, []string{eventGridSecretEnv + "=" + gridSecret}, "send", "-envelope", "eventgrid", "-destination", "ed_test_send", "-url", srv.URL, "invoice.paid")
	if code != 0 || !strings.HasPrefix(out, "invoice.paid 200") {
		t.Fatalf("exit %d, printed %q %q", code, out, errOut)
	}
	mu.Lock()
	if len(origins) != 1 || origins[0].Bus != stripewebhook.EventGrid || origins[0].Destination != "ed_test_send" {
		t.Fatalf("ran with origins %+v", origins)
	}
	mu.Unlock()
	code, out, _ = runBinary(t, []string{eventGridSecretEnv + "="}, "send", "-envelope", "eventgrid", "-destination", "ed_test_send", "-retries", "0", "-url", srv.URL, "invoice.paid")
	if code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("without the secret: exit %d, printed %q", code, out)
	}
}

// An EventBridge envelope to an HTTP endpoint is the event as a rule's
// target gets it, not signed.
func TestSendEventBridgeEnvelope(t *testing.T) {
	got := make(chan *stripewebhook.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e, err := stripewebhook.ParseEventBridge(body)
		if err != nil || r.Header.Get(stripewebhook.SignatureHeader) != "" {
			http.Error(w, fmt.Sprintf("%v, signature %q", err, r.Header.Get(stripewebhook.SignatureHeader)), 400)
			return
		}
		got <- e
	}))
	defer srv.Close()
	code, out, errOut := runBinary(t, nil, "send", "-envelope", "eventbridge", "-aws-account", "210987654321", "-url", srv.URL, "customer.created")
	if code != 0 {
		t.Fatalf("exit %d, printed %q %q", code, out, errOut)
	}
	e := <-got
	if e.Type != "customer.created" || e.Origin.Account != "210987654321" || e.Origin.Destination != fixture.Destination {
		t.Fatalf("received %s from %+v", e.Type, e.Origin)
	}
}

// -sqs puts the envelope on the queue, as the rule would.
func TestSendToSQS(t *testing.T) {
	client, endpoint := sqswebhooktest.Client(t)
	ctx := context.Background()
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(sqswebhooktest.Queue(t, client))}
	env := []string{"AWS_ENDPOINT_URL_SQS=" + endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test"}
	code, out, errOut := runBinary(t, env, "send", "-envelope", "eventbridge", "-sqs", aws.ToString(q.QueueUrl), "-flow", "subscription")
	if code != 0 || strings.Count(out, "sent to SQS") != 10 {
		t.Fatalf("exit %d, printed %q %q", code, out, errOut)
	}
	seen := 0
	for end := time.Now().Add(10 * time.Second); seen < 10 && time.Now().Before(end); {
		res, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			if _, err := stripewebhook.ParseEventBridge([]byte(aws.ToString(m.Body))); err != nil {
				t.Fatalf("message %s: %v", aws.ToString(m.MessageId), err)
			}
			seen++
		}
	}
	if seen != 10 {
		t.Fatalf("%d of the flow's 10 events on the queue", seen)
	}
}

func TestSendEnvelopeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"send", "-envelope", "kafka", "-url", "http://x", "invoice.paid"},
		{"send", "-sqs", "http://q", "invoice.paid"},
		{"send", "-envelope", "eventbridge", "-sqs", "http://q", "-url", "http://x", "invoice.paid"},
	} {
		if code, _, _ := runBinary(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
