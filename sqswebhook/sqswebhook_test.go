package sqswebhook_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/sqswebhook"
	"github.com/stripewebhook/stripewebhook/sqswebhook/sqswebhooktest"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

func client(t testing.TB) *sqs.Client {
	c, _ := sqswebhooktest.Client(t)
	return c
}

func queue(t *testing.T, c *sqs.Client) string { return sqswebhooktest.Queue(t, c) }

func send(t *testing.T, c *sqs.Client, url string, body []byte) {
	if _, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

type app struct {
	mu    sync.Mutex
	runs  map[string]int // successful
	tries map[string]int
	fail  func(id string, try int) error
	slow  time.Duration
}

func (a *app) ran(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[id]
}

func handler(t testing.TB, a *app) *stripewebhook.Handler {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(ctx context.Context, e *stripewebhook.Event) error {
		a.mu.Lock()
		a.tries[e.ID]++
		try, fail, slow := a.tries[e.ID], a.fail, a.slow
		a.mu.Unlock()
		if slow > 0 {
			time.Sleep(slow)
		}
		if fail != nil {
			if err := fail(e.ID, try); err != nil {
				return err
			}
		}
		a.mu.Lock()
		a.runs[e.ID]++
		a.mu.Unlock()
		return nil
	})
	h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations(fixture.Destination),
		stripewebhook.WithAWSAccounts(fixture.AWSAccount), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newApp() *app { return &app{runs: map[string]int{}, tries: map[string]int{}} }

// start runs a consumer until the test ends, or stop.
func start(t *testing.T, h *stripewebhook.Handler, c *sqs.Client, url string, opts ...sqswebhook.Option) (stop func()) {
	cons, err := sqswebhook.New(h, c, url, append([]sqswebhook.Option{sqswebhook.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cons.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", within, what)
		}
	}
}

// empty reports whether the queue gives nothing within a second.
func empty(t *testing.T, c *sqs.Client, url string) bool {
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1, VisibilityTimeout: 0})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Messages) == 0
}

func envelope(t *testing.T, id string) []byte {
	return webhooktest.EventBridge(t, webhooktest.Fixture(t, "invoice.paid", fixture.ID(id)))
}

func TestDuplicatesRunOnceAndAreDeleted(t *testing.T) {
	c := client(t)
	url := queue(t, c)
	a := newApp()
	for range 3 {
		send(t, c, url, envelope(t, "evt_sqs_dup"))
	}
	for i := range 20 {
		send(t, c, url, envelope(t, fmt.Sprintf("evt_sqs_many_%d", i)))
	}
	stop := start(t, handler(t, a), c, url, sqswebhook.WithConcurrency(8))
	eventually(t, "every event ran", 20*time.Second, func() bool {
		for i := range 20 {
			if a.ran(fmt.Sprintf("evt_sqs_many_%d", i)) != 1 {
				return false
			}
		}
		return a.ran("evt_sqs_dup") == 1
	})
	time.Sleep(500 * time.Millisecond) // the deletes
	stop()
	if a.ran("evt_sqs_dup") != 1 {
		t.Fatalf("the duplicated event ran %d times", a.ran("evt_sqs_dup"))
	}
	if !empty(t, c, url) {
		t.Fatal("messages that ran were not deleted")
	}
}

func TestFailedMessageComesBack(t *testing.T) {
	c := client(t)
	url := queue(t, c)
	a := newApp()
	a.fail = func(id string, try int) error {
		if try == 1 {
			return errors.New("database down")
		}
		return nil
	}
	send(t, c, url, envelope(t, "evt_sqs_retry"))
	start(t, handler(t, a), c, url, sqswebhook.WithVisibilityTimeout(time.Second))
	eventually(t, "the retry ran", 15*time.Second, func() bool { return a.ran("evt_sqs_retry") == 1 })
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tries["evt_sqs_retry"] != 2 {
		t.Fatalf("%d tries, want 2", a.tries["evt_sqs_retry"])
	}
}

func TestUntrustedNeverRunsAndStays(t *testing.T) {
	c := client(t)
	url := queue(t, c)
	a := newApp()
	other, _ := fixture.EventBridge(webhooktest.Fixture(t, "invoice.paid", fixture.ID("evt_sqs_other")), "ed_test_someoneelse", fixture.AWSAccount, fixture.AWSRegion, time.Now())
	send(t, c, url, other)
	send(t, c, url, []byte(`{"not":"an event"}`))
	send(t, c, url, envelope(t, "evt_sqs_fine"))
	stop := start(t, handler(t, a), c, url, sqswebhook.WithVisibilityTimeout(time.Second))
	eventually(t, "the good one ran", 10*time.Second, func() bool { return a.ran("evt_sqs_fine") == 1 })
	time.Sleep(2 * time.Second)
	stop()
	if a.ran("evt_sqs_other") != 0 {
		t.Fatal("an event from a destination not pinned ran")
	}
	// Both left for the redrive policy: still on the queue (each visible
	// again a second after its last receive).
	left := map[string]bool{}
	for end := time.Now().Add(5 * time.Second); len(left) < 2 && time.Now().Before(end); {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			left[aws.ToString(m.MessageId)] = true
		}
	}
	if len(left) != 2 {
		t.Fatalf("%d messages left, want the 2 that could not run", len(left))
	}
}

func TestDrainFinishesWhatRuns(t *testing.T) {
	c := client(t)
	url := queue(t, c)
	a := newApp()
	a.slow = 800 * time.Millisecond
	send(t, c, url, envelope(t, "evt_sqs_drain"))
	stop := start(t, handler(t, a), c, url)
	eventually(t, "it started", 10*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.tries["evt_sqs_drain"] == 1
	})
	stop()
	if a.ran("evt_sqs_drain") != 1 {
		t.Fatal("the run in flight did not finish before Run returned")
	}
	if !empty(t, c, url) {
		t.Fatal("the drained message was not deleted")
	}
}

// TestMain runs, in the child of TestKilledConsumersMessageComesBack, a
// consumer whose callback hangs.
func TestMain(m *testing.M) {
	if url := os.Getenv("SQSWEBHOOK_CHILD_QUEUE"); url != "" {
		a := newApp()
		a.fail = func(id string, _ int) error {
			fmt.Println("started", id)
			select {}
		}
		cons, err := sqswebhook.New(handler(nil, a), sqswebhooktest.NewClient(os.Getenv(sqswebhooktest.EnvURL)), url, sqswebhook.WithVisibilityTimeout(2*time.Second))
		if err != nil {
			panic(err)
		}
		cons.Run(context.Background())
		return
	}
	os.Exit(m.Run())
}

func TestKilledConsumersMessageComesBack(t *testing.T) {
	c := client(t)
	url := queue(t, c)
	send(t, c, url, envelope(t, "evt_sqs_killed"))
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "SQSWEBHOOK_CHILD_QUEUE="+url)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "started evt_sqs_killed" {
		cmd.Process.Kill()
		t.Fatalf("the child printed %q", lines.Text())
	}
	// Held past two visibility timeouts, extended: nobody else gets it.
	time.Sleep(5 * time.Second)
	a := newApp()
	stop := start(t, handler(t, a), c, url, sqswebhook.WithVisibilityTimeout(2*time.Second))
	time.Sleep(1500 * time.Millisecond)
	if a.ran("evt_sqs_killed") != 0 {
		t.Fatal("a message its consumer was extending was delivered to another")
	}
	cmd.Process.Kill()
	killed := time.Now()
	eventually(t, "the killed consumer's message ran again", 15*time.Second, func() bool { return a.ran("evt_sqs_killed") == 1 })
	t.Logf("ran again %v after the kill (visibility 2 s)", time.Since(killed).Round(100*time.Millisecond))
	stop()
}

func TestNewChecks(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error { return nil })
	unpinned, err := stripewebhook.NewHandler(d, stripewebhook.Secrets("whsec_x"))
	if err != nil {
		t.Fatal(err)
	}
	var api sqswebhook.API = &sqs.Client{}
	if _, err := sqswebhook.New(unpinned, api, "http://q"); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Fatalf("no destination pinned: %v", err)
	}
	h := handler(t, newApp())
	for name, opts := range map[string][]sqswebhook.Option{
		"concurrency":   {sqswebhook.WithConcurrency(0)},
		"visibility":    {sqswebhook.WithVisibilityTimeout(1500 * time.Millisecond)},
		"drain timeout": {sqswebhook.WithDrainTimeout(0)},
	} {
		if _, err := sqswebhook.New(h, api, "http://q", opts...); !errors.Is(err, stripewebhook.ErrInvalidOption) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := sqswebhook.New(h, nil, "http://q"); !errors.Is(err, stripewebhook.ErrInvalidOption) {
		t.Errorf("nil client: %v", err)
	}
}
