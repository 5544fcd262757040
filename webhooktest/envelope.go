package webhooktest

import (
	"testing"
	"time"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// EventBridge wraps the event payload in the envelope Amazon EventBridge
// delivers from fixture.Destination's partner event source, in
// fixture.AWSAccount and fixture.AWSRegion, now: what an SQS queue or a
// Lambda function behind the rule receives.
func EventBridge(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	b, err := fixture.EventBridge(payload, fixture.Destination, fixture.AWSAccount, fixture.AWSRegion, time.Now())
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return b
}

// EventGrid wraps the event payload in the CloudEvent Azure Event Grid
// delivers from fixture.Destination's partner topic, now.
func EventGrid(tb testing.TB, payload []byte) []byte {
	tb.Helper()
	b, err := fixture.EventGrid(payload, fixture.Destination, time.Now())
	if err != nil {
		tb.Fatalf("webhooktest: %v", err)
	}
	return b
}
