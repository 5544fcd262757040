package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/sqswebhook/sqswebhooktest"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// -sqs and -eventgrid bring the events of an EventBridge destination (from
// an SQS queue) and of an Event Grid subscription to the same dispatcher
// and store as the webhook: an event that arrives every way prints once.
func TestCloudWaysIn(t *testing.T) {
	client, endpoint := sqswebhooktest.Client(t)
	// The SDK's usual environment, as a deployment would set it.
	t.Setenv("AWS_ENDPOINT_URL_SQS", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	ctx := context.Background()
	q := &sqs.CreateQueueOutput{QueueUrl: aws.String(sqswebhooktest.Queue(t, client))}

	if err := run(ctx, []string{"-sqs", aws.ToString(q.QueueUrl)}, secretEnv, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-destinations") {
		t.Fatalf("-sqs without -destinations: %v", err)
	}
	webhook, out, _ := startExample(t, "-sqs", aws.ToString(q.QueueUrl), "-eventgrid", "/eventgrid",
		"-destinations", fixture.Destination, "-aws-accounts", fixture.AWSAccount)
	base := strings.TrimSuffix(webhook, "/webhook")

	payload := webhooktest.Fixture(t, "payment_method.attached", fixture.ID("evt_example_three_ways"))
	// By the bus through SQS, twice (at least once), by Event Grid, and by
	// the webhook.
	for range 2 {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(webhooktest.EventBridge(t, payload)))}); err != nil {
			t.Fatal(err)
		}
	}
	post := func(url string, body []byte, header http.Header) int {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	grid := webhooktest.EventGrid(t, payload)
	if code := post(base+"/eventgrid", grid, nil); code != 401 {
		t.Fatalf("Event Grid delivery without the secret: %d, want 401", code)
	}
	// 409 while the SQS copy runs: Event Grid retries it.
	for code, end := 0, time.Now().Add(10*time.Second); code != 200; time.Sleep(100 * time.Millisecond) {
		if code = post(base+"/eventgrid", grid, http.Header{"Authorization": {"Bearer " + eventGridSecret}}); code != 200 && (code != 409 || time.Now().After(end)) {
			t.Fatalf("Event Grid delivery: %d", code)
		}
	}
	if code := post(base+"/eventgrid?code="+eventGridSecret, grid, nil); code != 200 {
		t.Fatalf("Event Grid delivery with ?code=: %d", code)
	}
	if code := post(webhook, payload, http.Header{"Stripe-Signature": {fixture.Header(payload, time.Now(), secret)}}); code != 200 {
		t.Fatalf("webhook: %d", code)
	}
	// A second event only by SQS, to know the queue was drained.
	last := webhooktest.Fixture(t, "payment_intent.succeeded", fixture.ID("evt_example_sqs_last"))
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(webhooktest.EventBridge(t, last)))}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "PaymentIntent was successful!"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the SQS event did not print; printed %q", out.String())
		}
	}
	time.Sleep(time.Second) // the duplicates' runs, if any
	if n := strings.Count(out.String(), "PaymentMethod was attached to a Customer!"); n != 1 {
		t.Fatalf("the event that arrived five times printed %d times:\n%s", n, out.String())
	}
}
