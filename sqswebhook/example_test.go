package sqswebhook_test

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/sqswebhook"
)

// A service that consumes the SQS queue an EventBridge rule on Stripe's
// partner event bus targets. (A deployment builds the client from
// config.LoadDefaultConfig, which reads the SDK's usual environment.)
func Example() {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
		log.Println("invoice paid:", e.ID, "from", e.Origin.Destination)
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil,
		stripewebhook.WithDestinations(os.Getenv("STRIPE_DESTINATION")), stripewebhook.WithAWSAccounts(os.Getenv("AWS_ACCOUNT_ID")))
	if err != nil {
		log.Fatal(err)
	}
	client := sqs.New(sqs.Options{Region: os.Getenv("AWS_REGION")})
	c, err := sqswebhook.New(h, client, os.Getenv("STRIPE_SQS_QUEUE_URL"), sqswebhook.WithConcurrency(8))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c.Run(ctx) // until SIGINT, then drains
}
