package lambdawebhook_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/lambdawebhook"
)

// A function whose event source is the SQS queue an EventBridge rule on
// Stripe's partner event bus targets. In the deployed function, main ends
// with lambda.Start(fn).
func ExampleSQS() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("customer.subscription.updated", func(_ context.Context, e *stripewebhook.Event) error {
		fmt.Println("subscription updated:", e.ID)
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, // no signing secret: the bus is the trust
		stripewebhook.WithDestinations(fixture.Destination), stripewebhook.WithAWSAccounts(fixture.AWSAccount))
	if err != nil {
		log.Fatal(err)
	}
	fn, err := lambdawebhook.SQS(h)
	if err != nil {
		log.Fatal(err)
	}
	// What Lambda passes it (lambda.Start(fn) in the deployed function).
	inner, _ := fixture.Load("customer.subscription.updated", fixture.ID("evt_example_sqs"))
	body, _ := fixture.EventBridge(inner, fixture.Destination, fixture.AWSAccount, fixture.AWSRegion, time.Now())
	res, err := fn(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: string(body)}}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("failed messages:", len(res.BatchItemFailures))
	// Output:
	// subscription updated: evt_example_sqs
	// failed messages: 0
}
