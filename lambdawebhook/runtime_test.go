package lambdawebhook_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/lambdawebhook"
)

// TestMain runs, in the child process of TestThroughTheRuntimeAPI, a
// function as a Lambda deployment would: lambda.Start, against the
// Runtime API at AWS_LAMBDA_RUNTIME_API.
func TestMain(m *testing.M) {
	if os.Getenv("LAMBDAWEBHOOK_CHILD") == "1" {
		d := stripewebhook.NewDispatcher()
		d.HandleFunc("invoice.paid", func(_ context.Context, e *stripewebhook.Event) error {
			fmt.Println("ran", e.ID, e.Origin.Destination)
			return nil
		})
		h, err := stripewebhook.NewHandler(d, nil, stripewebhook.WithDestinations(fixture.Destination))
		if err != nil {
			panic(err)
		}
		fn, err := lambdawebhook.EventBridge(h)
		if err != nil {
			panic(err)
		}
		lambda.Start(fn)
		return
	}
	os.Exit(m.Run())
}

// runtimeAPI is the Lambda Runtime API's invocation loop: next hands out
// the queued events, response and error record how each ended.
type runtimeAPI struct {
	events  chan []byte
	results chan string // "response <id>" or "error <id> <body>"
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const prefix = "/2018-06-01/runtime/invocation/"
	path := strings.TrimPrefix(req.URL.Path, prefix)
	switch {
	case req.Method == http.MethodGet && path == "next":
		select {
		case ev := <-r.events:
			id := fmt.Sprintf("req-%d", time.Now().UnixNano())
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", id)
			w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:stripe")
			w.Write(ev)
		case <-req.Context().Done():
		}
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/response"):
		io.Copy(io.Discard, req.Body)
		r.results <- "response " + strings.TrimSuffix(path, "/response")
		w.WriteHeader(http.StatusAccepted)
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/error"):
		body, _ := io.ReadAll(req.Body)
		r.results <- "error " + strings.TrimSuffix(path, "/error") + " " + string(body)
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, req)
	}
}

func TestThroughTheRuntimeAPI(t *testing.T) {
	api := &runtimeAPI{events: make(chan []byte, 4), results: make(chan string, 4)}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "LAMBDAWEBHOOK_CHILD=1", "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := bufio.NewScanner(out)

	ev := envelope(t, "evt_runtime_1")
	other, _ := fixture.EventBridge([]byte(`{"id":"evt_runtime_2","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}`), "ed_test_someoneelse", fixture.AWSAccount, fixture.AWSRegion, time.Now())
	api.events <- ev
	api.events <- ev // EventBridge's at-least-once: the same event again
	api.events <- other
	want := []string{"response", "response", "error"}
	for i, w := range want {
		select {
		case got := <-api.results:
			if !strings.HasPrefix(got, w+" ") {
				t.Fatalf("invocation %d: %s, want %s", i, got, w)
			}
			if w == "error" && !strings.Contains(got, "ed_test_someoneelse") {
				t.Fatalf("the error does not say why: %s", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("invocation %d did not end", i)
		}
	}
	cmd.Process.Kill()
	var ran []string
	for lines.Scan() {
		ran = append(ran, lines.Text())
	}
	if len(ran) != 1 || ran[0] != "ran evt_runtime_1 "+fixture.Destination {
		t.Fatalf("the function printed %q, want the event once", ran)
	}
}
