package stripewebhook_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// slowServer serves a handler on a real listener, with none of
// http.Server's timeouts: what a user who mounts the handler on a bare
// server gets.
func slowServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Slow clients: bodies declared at 1 MiB and never finished, chunked bodies
// that never end, bodies trickled a byte at a time. Each connection is
// answered or closed by the handler's read deadline, and the memory the
// handler allocates follows the bytes received, not the declared length.
func TestSlowClientsAreCutOff(t *testing.T) {
	var runs sync.WaitGroup
	d := stripewebhook.NewDispatcher()
	d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error {
		t.Error("a partial body ran a callback")
		return nil
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
		stripewebhook.WithReadTimeout(300*time.Millisecond), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	addr := slowServer(t, h)

	const perKind = 100
	kinds := map[string]func(c net.Conn){
		"declared 1 MiB, sent 10 bytes": func(c net.Conn) {
			fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 1048576\r\n\r\n{\"id\": \"ev")
		},
		"chunked, never ends": func(c net.Conn) {
			fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n")
		},
		"trickled": func(c net.Conn) {
			fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
			go func() {
				for range 20 {
					if _, err := c.Write([]byte("{")); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		},
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for name, start := range kinds {
		func() {
			for range perKind {
				c, err := net.Dial("tcp", addr)
				require.NoError(t, err)
				conns = append(conns, c) // closed by the server, or at the end
				start(c)
				runs.Add(1)
				go func() {
					defer runs.Done()
					// The server must answer (400: body not read in time) and
					// close well before this deadline.
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err == nil {
						assert.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						_, err = c.Read(make([]byte, 1))
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Errorf("%s: the connection was still open after 10 s", name)
					}
				}()
			}
		}()
	}
	runs.Wait()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	n := uint64(len(conns))
	t.Logf("%d slow connections: %d KiB allocated in all, %d KiB each", n, allocated>>10, allocated/n>>10)
	assert.Less(t, allocated, n*128<<10, "memory follows the bytes received, not the declared length")
}

// Once the body is in, no read deadline (the handler's, or the server's
// ReadTimeout) ends the request while a slow callback runs: net/http
// cancels a request's context when its connection's read deadline passes.
func TestReadDeadlineDoesNotCancelSlowCallbacks(t *testing.T) {
	d := stripewebhook.NewDispatcher()
	var ctxErr error
	d.HandleFunc("invoice.paid", func(ctx context.Context, _ *stripewebhook.Event) error {
		time.Sleep(600 * time.Millisecond)
		ctxErr = ctx.Err()
		return ctxErr
	})
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret),
		stripewebhook.WithReadTimeout(200*time.Millisecond), stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	for _, serverTimeout := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(fmt.Sprintf("server ReadTimeout %v", serverTimeout), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := &http.Server{Handler: h, ReadTimeout: serverTimeout}
			go srv.Serve(ln)
			defer srv.Close()
			payload := webhooktest.WithID(t, invoicePaid(t), "evt_slow_"+serverTimeout.String())
			req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/webhook", strings.NewReader(string(payload)))
			req.Header.Set(stripewebhook.SignatureHeader, fixture.Header(payload, time.Now(), testSecret))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.NoError(t, ctxErr)
		})
	}
}
