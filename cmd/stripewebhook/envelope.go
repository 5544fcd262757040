package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/stripewebhook/stripewebhook/fixture"
)

// eventGridSecretEnv is the shared secret an Event Grid delivery presents
// as a bearer token, when set.
const eventGridSecretEnv = "STRIPE_EVENTGRID_SECRET"

// busOptions are send's flags for a cloud bus's envelope.
type busOptions struct {
	envelope, sqs                string
	destination, account, region string
}

func busFlags(fs *flag.FlagSet) *busOptions {
	b := &busOptions{}
	fs.StringVar(&b.envelope, "envelope", "", "wrap each event as a cloud bus delivers it, unsigned: `eventbridge` (Amazon EventBridge) or eventgrid (an Azure Event Grid CloudEvent, with "+eventGridSecretEnv+" as a bearer token if set)")
	fs.StringVar(&b.sqs, "sqs", "", "with -envelope eventbridge: send to this SQS queue `URL` instead of -url (AWS region, endpoint and credentials from the SDK's environment)")
	fs.StringVar(&b.destination, "destination", fixture.Destination, "the envelope's event destination `ed_…`")
	fs.StringVar(&b.account, "aws-account", fixture.AWSAccount, "the EventBridge envelope's AWS `account`")
	fs.StringVar(&b.region, "aws-region", fixture.AWSRegion, "the EventBridge envelope's AWS `region`")
	return b
}

// check reports a combination that cannot be sent.
func (b *busOptions) check(url string) error {
	switch {
	case b.envelope != "" && b.envelope != "eventbridge" && b.envelope != "eventgrid":
		return fmt.Errorf("-envelope: %q is not eventbridge or eventgrid", b.envelope)
	case b.sqs != "" && b.envelope != "eventbridge":
		return errors.New("-sqs sends EventBridge events: it needs -envelope eventbridge")
	case b.sqs != "" && url != "":
		return errors.New("-sqs and -url are two destinations: give one")
	}
	return nil
}

// bearer is the token an Event Grid delivery presents, if any.
func (b *busOptions) bearer(getenv func(string) string) string {
	if b.envelope == "eventgrid" {
		return getenv(eventGridSecretEnv)
	}
	return ""
}

// wrap puts each event in the envelope, if one was asked for.
func (b *busOptions) wrap(events []namedEvent, at time.Time) ([]namedEvent, error) {
	if b.envelope == "" {
		return events, nil
	}
	out := make([]namedEvent, len(events))
	for i, ev := range events {
		var err error
		out[i].name = ev.name
		if b.envelope == "eventbridge" {
			out[i].payload, err = fixture.EventBridge(ev.payload, b.destination, b.account, b.region, at)
		} else {
			out[i].payload, err = fixture.EventGrid(ev.payload, b.destination, at)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sqsSender sends each event as an SQS message, as an EventBridge rule
// whose target is the queue does.
type sqsSender struct {
	client *sqs.Client
	url    string
}

func newSQSSender(ctx context.Context, url string) (*sqsSender, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("-sqs: %w", err)
	}
	return &sqsSender{client: sqs.NewFromConfig(cfg), url: url}, nil
}

// deliverRetrying sends ev; the SDK retries what it can.
func (s *sqsSender) deliverRetrying(ctx context.Context, ev namedEvent, _ time.Time, _ int, stdout io.Writer) (bool, error) {
	out, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.url), MessageBody: aws.String(string(ev.payload))})
	if err != nil {
		fmt.Fprintf(stdout, "%s not sent: %v\n", ev.name, err)
		return false, nil
	}
	fmt.Fprintf(stdout, "%s sent to SQS as message %s\n", ev.name, aws.ToString(out.MessageId))
	return true, nil
}
