// Package sqswebhooktest gives a test an SQS client of the SQS-compatible
// server at STRIPEWEBHOOK_SQS_URL (scripts/test.sh starts fauxqs there)
// and a queue of its own, deleted when the test ends. Without the
// variable, the test is skipped, saying which to set.
package sqswebhooktest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// EnvURL names the server's URL.
const EnvURL = "STRIPEWEBHOOK_SQS_URL"

// Client returns a client of the server, with fixed test credentials in
// us-east-1, and the server's URL; it skips tb without EnvURL.
func Client(tb testing.TB) (*sqs.Client, string) {
	tb.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		tb.Skipf("set %s (an SQS-compatible server: scripts/test.sh starts fauxqs) to run the SQS tests", EnvURL)
	}
	return NewClient(url), url
}

// NewClient returns a client of the server at url, with fixed test
// credentials in us-east-1: for a test's child process, which has no
// testing.TB.
func NewClient(url string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	})
}

// Queue creates a queue named for tb, deleted when tb ends, and returns its
// URL.
func Queue(tb testing.TB, c *sqs.Client) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", "_", "-").Replace(tb.Name()), time.Now().UnixNano()%1e9)
	if len(name) > 80 { // SQS's limit
		name = name[len(name)-80:]
	}
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	return aws.ToString(out.QueueUrl)
}
