// Package lambdawebhook runs Stripe events that reach AWS Lambda through
// Amazon EventBridge through a stripewebhook.Handler's pipeline: the same
// dispatcher, typed callbacks, dedup store (EventBridge delivers at least
// once; an event that also arrives by Stripe's webhook runs once),
// ordering guard, queue and observer. Two ways in, for aws-lambda-go's
// lambda.Start:
//
//   - EventBridge: the function is the target of the partner event bus's
//     rule, invoked with each event.
//
//   - SQS: the function's event source is the SQS queue the rule targets;
//     it answers partial batch failures, so that only the failed messages
//     come back (turn on ReportBatchItemFailures in the event source
//     mapping), and the queue's redrive policy dead-letters what keeps
//     failing.
//
//     h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations("ed_…"), stripewebhook.WithAWSAccounts("123456789012"))
//     fn, err := lambdawebhook.SQS(h)
//     lambda.Start(fn)
//
// The events carry no Stripe signature: EventBridge's and SQS's access
// control is the trust, and the Handler refuses an event from a destination
// or account it does not pin (stripewebhook.WithDestinations, WithAWSAccounts).
package lambdawebhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stripewebhook/stripewebhook"
)

// EventBridge returns a Lambda handler for EventBridge events from a Stripe
// partner event source. It returns the error of an event that did not run
// (malformed, from a source the Handler does not pin, a callback's
// failure): Lambda retries an asynchronous invocation, then sends it to the
// function's dead-letter queue or on-failure destination. It fails if h
// pins no destination.
func EventBridge(h *stripewebhook.Handler) (func(ctx context.Context, event json.RawMessage) error, error) {
	if err := trusts(h); err != nil {
		return nil, err
	}
	return func(ctx context.Context, event json.RawMessage) error {
		e, err := stripewebhook.ParseEventBridge(event)
		if err == nil {
			err = h.Deliver(ctx, e)
		}
		if err != nil {
			return fmt.Errorf("lambdawebhook: %w", err)
		}
		return nil
	}, nil
}

// SQS returns a Lambda handler for an SQS event source whose messages are
// EventBridge events from a Stripe partner event source (the rule's target
// is the queue, with no input transformer). It runs the messages in order
// and reports the ones that did not run as batch item failures; on a FIFO
// queue, the first failure fails the rest of the batch too, which must
// keep its order. It fails if h pins no destination.
func SQS(h *stripewebhook.Handler) (func(ctx context.Context, batch events.SQSEvent) (events.SQSEventResponse, error), error) {
	if err := trusts(h); err != nil {
		return nil, err
	}
	return func(ctx context.Context, batch events.SQSEvent) (events.SQSEventResponse, error) {
		var res events.SQSEventResponse
		failed := false
		for _, m := range batch.Records {
			if failed && strings.HasSuffix(m.EventSourceARN, ".fifo") {
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
				continue
			}
			e, err := stripewebhook.ParseEventBridge([]byte(m.Body))
			if err == nil {
				err = h.Deliver(ctx, e)
			}
			if err != nil {
				failed = true
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
		}
		return res, nil
	}, nil
}

func trusts(h *stripewebhook.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: lambdawebhook: nil Handler", stripewebhook.ErrInvalidOption)
	}
	if err := h.TrustsBus(); err != nil {
		return fmt.Errorf("lambdawebhook: %w", err)
	}
	return nil
}
