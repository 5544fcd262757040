package stripewebhook_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// edgeHandler is a handler whose callbacks count their runs, on a real
// listener with none of http.Server's timeouts.
func edgeHandler(t *testing.T, opts ...stripewebhook.HandlerOption) (string, *atomic.Int32) {
	t.Helper()
	runs := new(atomic.Int32)
	d := stripewebhook.NewDispatcher()
	require.NoError(t, d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error {
		runs.Add(1)
		return nil
	}))
	opts = append([]stripewebhook.HandlerOption{stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), opts...)
	require.NoError(t, err)
	return slowServer(t, h), runs
}

// filler is what sendHead sends of a body, allocated once so that tests
// measuring the server's allocations do not count it.
var filler = bytes.Repeat([]byte(" "), 1<<20)

// sendHead opens a connection and sends a request's head declaring a body
// of length bytes, and the first sent bytes of it; it returns the
// connection, to read the answer from.
func sendHead(t *testing.T, addr, header string, length, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", header, length)
	if sent > 0 {
		_, err = c.Write(filler[:sent])
		require.NoError(t, err)
	}
	return c
}

// answer reads the response on c within d, and whether the server then
// closed the connection.
func answer(t *testing.T, c net.Conn, d time.Duration) (*http.Response, bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "no answer within %v", d)
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	_, err = br.ReadByte()
	ne, timeout := err.(net.Error)
	return resp, err != nil && !(timeout && ne.Timeout())
}

// A delivery whose header cannot verify is answered 400 at once, its
// connection closed, without the body being read: the client here never
// sends it.
func TestHeaderRefusedBeforeTheBody(t *testing.T) {
	addr, runs := edgeHandler(t)
	fresh := time.Now().Unix()
	for name, header := range map[string]string{
		"missing":                 "",
		"malformed":               "Stripe-Signature: v1,t=1\r\n",
		"a year old":              fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", fresh-365*24*3600, strings.Repeat("ab", 32)),
		"from the future":         fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", fresh+3600, strings.Repeat("ab", 32)),
		"no v1 signature":         fmt.Sprintf("Stripe-Signature: t=%d,v0=%s\r\n", fresh, strings.Repeat("ab", 32)),
		"too long to be a header": "Stripe-Signature: t=1," + strings.Repeat("v1=00,", 2000) + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			for _, length := range []int{100, 1 << 20} { // under and over net/http's 256 KiB post-handler read
				c := sendHead(t, addr, header, length, 0)
				start := time.Now()
				resp, closed := answer(t, c, 2*time.Second)
				assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
				assert.True(t, closed, "the connection is closed")
				assert.Less(t, time.Since(start), time.Second, "answered at once, not at the read timeout")
			}
		})
	}
	// The same statuses as before: a forged fresh header still needs the body.
	c := sendHead(t, addr, fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", fresh, strings.Repeat("ab", 32)), 10, 10)
	resp, _ := answer(t, c, 2*time.Second)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Zero(t, runs.Load())
}

// The bodies in flight are bounded: with room for three 1 MiB bodies,
// twenty connections that declare one and send most of it get three
// readers and seventeen 503s with Retry-After, before their bodies are
// read; a small genuine delivery is still answered meanwhile, and the
// memory held follows the three bodies read.
func TestBytesInFlightBounded(t *testing.T) {
	const mib = 1 << 20
	addr, runs := edgeHandler(t, stripewebhook.WithMaxBodyBytes(mib), stripewebhook.WithMaxBytesInFlight(3*mib+3+64<<10),
		stripewebhook.WithReadTimeout(3*time.Second))
	forged := fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", time.Now().Unix(), strings.Repeat("ab", 32))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var held []net.Conn
	refused := 0
	for range 20 {
		c := sendHead(t, addr, forged, mib, mib-100<<10)
		// A refused one answers at once; a reader waits for the rest.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			held = append(held, c)
			continue
		}
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "1", resp.Header.Get("Retry-After"))
		refused++
	}
	assert.Len(t, held, 3, "three bodies fit")
	assert.Equal(t, 17, refused)

	// A genuine delivery while the three are held.
	payload := webhooktest.Fixture(t, "customer.created")
	req, err := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), testSecret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, runs.Load())

	runtime.GC() // what is live now is what the server holds
	runtime.ReadMemStats(&after)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("20 connections of 1 MiB declared, 0.9 MiB sent: %d KiB live on the heap", live>>10)
	assert.Less(t, live, int64(4*mib+512<<10), "the three bodies read and little else")
}

// A chunked body is counted as it grows: past the bound, 503.
func TestBytesInFlightChunked(t *testing.T) {
	addr, _ := edgeHandler(t, stripewebhook.WithMaxBodyBytes(256<<10), stripewebhook.WithMaxBytesInFlight(256<<10))
	forged := fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", time.Now().Unix(), strings.Repeat("ab", 32))
	first, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer first.Close()
	fmt.Fprintf(first, "POST /webhook HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n", forged)
	chunk := bytes.Repeat([]byte(" "), 200<<10)
	fmt.Fprintf(first, "%x\r\n%s\r\n", len(chunk), chunk) // 200 KiB held, never finished
	time.Sleep(100 * time.Millisecond)
	second, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer second.Close()
	fmt.Fprintf(second, "POST /webhook HTTP/1.1\r\nHost: x\r\n%sTransfer-Encoding: chunked\r\n\r\n", forged)
	fmt.Fprintf(second, "%x\r\n%s\r\n", len(chunk), chunk)
	resp, _ := answer(t, second, 2*time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// A source the filter does not allow gets 403 before its body is read,
// logged at Warn with its address; behind a trusted proxy the client is
// the rightmost untrusted hop of X-Forwarded-For or Forwarded, and the
// same headers from anyone else change nothing.
func TestSourceFilter(t *testing.T) {
	stripeIP := stripewebhook.StripeWebhookIPs[0]
	behindProxy, err := stripewebhook.NewSourceFilter(append(stripewebhook.StripeWebhookIPs[:len(stripewebhook.StripeWebhookIPs):len(stripewebhook.StripeWebhookIPs)], "2001:db8::/32"),
		[]string{"127.0.0.1", "::1", "10.0.0.0/8"})
	require.NoError(t, err)
	direct, err := stripewebhook.NewSourceFilter(stripewebhook.StripeWebhookIPs, nil)
	require.NoError(t, err)
	local, err := stripewebhook.NewSourceFilter([]string{"127.0.0.1", "::1"}, nil)
	require.NoError(t, err)

	var logMu sync.Mutex
	var logs bytes.Buffer
	logged := func() string { logMu.Lock(); defer logMu.Unlock(); return logs.String() }
	serve := func(f *stripewebhook.SourceFilter, network string) (string, *atomic.Int32) {
		runs := new(atomic.Int32)
		d := stripewebhook.NewDispatcher()
		d.HandleFunc("*", func(context.Context, *stripewebhook.Event) error { runs.Add(1); return nil })
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(testSecret), stripewebhook.WithSourceFilter(f), stripewebhook.WithDedup(nil),
			stripewebhook.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))))
		require.NoError(t, err)
		host := "127.0.0.1:0"
		if network == "tcp6" {
			host = "[::1]:0"
		}
		ln, err := net.Listen(network, host)
		if err != nil {
			t.Skipf("no %s loopback: %v", network, err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String(), runs
	}
	payload := webhooktest.Fixture(t, "customer.created")
	post := func(addr string, header http.Header) int {
		req, err := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(payload))
		require.NoError(t, err)
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), testSecret))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	xff := func(v ...string) http.Header { return http.Header{"X-Forwarded-For": v} }
	fwd := func(v ...string) http.Header { return http.Header{"Forwarded": v} }

	proxied, proxiedRuns := serve(behindProxy, "tcp4")
	for name, c := range map[string]struct {
		header http.Header
		want   int
	}{
		"Stripe's address":                    {xff(stripeIP), 200},
		"another address":                     {xff("198.51.100.7"), 403},
		"a spoofed hop left of Stripe's":      {xff("198.51.100.7, " + stripeIP), 200},
		"Stripe's, then an untrusted hop":     {xff(stripeIP + ", 198.51.100.7"), 403},
		"Stripe's, then a trusted proxy":      {xff(stripeIP + ", 10.1.2.3"), 200},
		"two header lines":                    {xff("198.51.100.7", stripeIP+", 10.1.2.3"), 200},
		"IPv4-mapped IPv6":                    {xff("::ffff:" + stripeIP), 200},
		"IPv6 allowed":                        {xff("2001:db8::1"), 200},
		"IPv6 not allowed":                    {xff("2001:db9::1"), 403},
		"malformed":                           {xff("not-an-address"), 403},
		"Forwarded":                           {fwd("for=" + stripeIP + ";proto=https"), 200},
		"Forwarded, IPv6 with a port":         {fwd(`for="[2001:db8::2]:4711"`), 200},
		"Forwarded, several hops":             {fwd("for=198.51.100.7, for=" + stripeIP + ";by=10.0.0.1"), 200},
		"Forwarded, obfuscated":               {fwd("for=_hidden"), 403},
		"no header: the proxy itself":         {nil, 403},
		"Forwarded wins over X-Forwarded-For": {http.Header{"Forwarded": {"for=198.51.100.7"}, "X-Forwarded-For": {stripeIP}}, 403},
	} {
		t.Run("behind a proxy/"+name, func(t *testing.T) {
			assert.Equal(t, c.want, post(proxied, c.header))
		})
	}
	assert.EqualValues(t, 9, proxiedRuns.Load(), "the callbacks ran for the allowed deliveries only")
	assert.Contains(t, logged(), "198.51.100.7", "a refused source is logged with its address")
	assert.Contains(t, logged(), "level=WARN")

	t.Run("a spoofed header from an untrusted peer", func(t *testing.T) {
		addr, runs := serve(direct, "tcp4")
		assert.Equal(t, 403, post(addr, xff(stripeIP)))
		assert.Equal(t, 403, post(addr, fwd("for="+stripeIP)))
		assert.Zero(t, runs.Load())
	})
	t.Run("an allowed peer, IPv4 and IPv6", func(t *testing.T) {
		for _, network := range []string{"tcp4", "tcp6"} {
			addr, runs := serve(local, network)
			assert.Equal(t, 200, post(addr, nil), network)
			assert.EqualValues(t, 1, runs.Load(), network)
		}
	})
	t.Run("refused before the body", func(t *testing.T) {
		addr, _ := serve(direct, "tcp4")
		c := sendHead(t, addr, fmt.Sprintf("Stripe-Signature: t=%d,v1=%s\r\n", time.Now().Unix(), strings.Repeat("ab", 32)), 1<<20, 0)
		resp, closed := answer(t, c, time.Second)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.True(t, closed)
	})
}

func TestSourceFilterConfigErrors(t *testing.T) {
	for name, c := range map[string][2][]string{
		"no allowed source":      {nil, nil},
		"not an address":         {{"3.18.12.63", "stripe.com"}, nil},
		"a proxy not an address": {{"3.18.12.63"}, {"10.0.0.0/33"}},
	} {
		_, err := stripewebhook.NewSourceFilter(c[0], c[1])
		assert.ErrorIs(t, err, stripewebhook.ErrInvalidOption, name)
	}
}

// The published list is read with the caller's client; anything but a
// list of addresses changes nothing.
func TestFetchStripeWebhookIPs(t *testing.T) {
	var body atomic.Value
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	status.Store(200)
	body.Store(`{"WEBHOOKS": ["3.18.12.63", "3.130.192.231"], "API": ["1.2.3.4"]}`)
	ips, err := stripewebhook.FetchStripeWebhookIPs(context.Background(), srv.Client(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, []string{"3.18.12.63", "3.130.192.231"}, ips)
	f, err := stripewebhook.NewSourceFilter(stripewebhook.StripeWebhookIPs, nil)
	require.NoError(t, err)
	require.NoError(t, f.SetAllowed(ips))

	for name, c := range map[string]struct {
		status int
		body   string
	}{
		"a 500":         {500, "oops"},
		"not JSON":      {200, "<html>"},
		"no WEBHOOKS":   {200, `{"API": ["1.2.3.4"]}`},
		"not addresses": {200, `{"WEBHOOKS": ["stripe.com"]}`},
	} {
		status.Store(int32(c.status))
		body.Store(c.body)
		_, err := stripewebhook.FetchStripeWebhookIPs(context.Background(), srv.Client(), srv.URL)
		assert.Error(t, err, name)
	}
}
