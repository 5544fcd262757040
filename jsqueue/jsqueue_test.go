package jsqueue_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/dedupstoretest"
	"github.com/stripewebhook/stripewebhook/jsqueue"
	"github.com/stripewebhook/stripewebhook/queuetest"
)

// envURL names the NATS server (with JetStream) the tests use;
// scripts/test.sh sets it.
const envURL = "STRIPEWEBHOOK_NATS_URL"

func natsURL(t *testing.T) string {
	return dedupstoretest.ServerURL(t, envURL, "nats://127.0.0.1:4222, a server with JetStream")
}

// open connects to url and opens the queue of namespace ns.
func open(t *testing.T, url, ns string) stripewebhook.Queue {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("%s=%s cannot be reached: %v", envURL, url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	q, err := jsqueue.New(context.Background(), js, jsqueue.WithName(ns), jsqueue.WithVisibilityTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), ns)
		js.DeleteStream(context.Background(), ns+"_DEAD")
	})
	return q
}

func TestConformance(t *testing.T) {
	raw := natsURL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	queuetest.Run(t, queuetest.Config{
		Open:    func(t *testing.T, ns string) stripewebhook.Queue { return open(t, raw, ns) },
		AckWait: time.Second,
		Backend: u.Host,
		OpenVia: func(t *testing.T, ns, addr string) stripewebhook.Queue { return open(t, "nats://"+addr, ns) },
	})
}

// noJetStream is a JetStream that is never used: New refuses its options first.
type noJetStream struct{ jetstream.JetStream }

// A configuration mistake is ErrInvalidOption, naming the option.
func TestInvalidConfig(t *testing.T) {
	for want, opts := range map[string][]jsqueue.Option{
		"jsqueue.WithName":              {jsqueue.WithName("")},
		"jsqueue.WithVisibilityTimeout": {jsqueue.WithVisibilityTimeout(0)},
	} {
		_, err := jsqueue.New(context.Background(), noJetStream{}, opts...)
		if !errors.Is(err, stripewebhook.ErrInvalidOption) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	if _, err := jsqueue.New(context.Background(), nil); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Errorf("nil JetStream: %v", err)
	}
}
