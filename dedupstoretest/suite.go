// Package dedupstoretest is the conformance suite for implementations of
// stripewebhook.Store, and of stripewebhook.StateStore for a store that is
// one. Every store in this repository passes it, the in-memory one
// included; a store for another backend should too:
//
//	func TestConformance(t *testing.T) {
//		dedupstoretest.Run(t, dedupstoretest.Config{
//			New: func(t *testing.T) stripewebhook.Store { return mystore.New(client) },
//		})
//	}
package dedupstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/fixture"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// Config describes the store under test.
type Config struct {
	// New returns a store on a reachable backend. The suite uses fresh
	// random keys, so stores may share one database across calls.
	New func(t *testing.T) stripewebhook.Store

	// Backend is the host:port of the store's server. With NewVia, the
	// suite puts a TCP proxy in front of it to cut the store off and bring
	// it back. Leave both empty for an in-process store.
	Backend string
	// NewVia returns a store that reaches its server at addr (the proxy).
	NewVia func(t *testing.T, addr string) stripewebhook.Store
}

// Run runs the whole suite.
func Run(t *testing.T, c Config) {
	t.Run("Semantics", func(t *testing.T) { Semantics(t, c.New(t)) })
	t.Run("LeaseExpiry", func(t *testing.T) { LeaseExpiry(t, c.New(t)) })
	t.Run("Extend", func(t *testing.T) { Extend(t, c.New(t)) })
	t.Run("Retention", func(t *testing.T) { Retention(t, c.New(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { ConcurrentClaims(t, c.New(t)) })
	t.Run("Replicas", func(t *testing.T) { Replicas(t, c.New(t)) })
	t.Run("LongKeys", func(t *testing.T) { LongKeys(t, c.New(t)) })
	t.Run("AbandonedDelivery", func(t *testing.T) { AbandonedDelivery(t, c.New(t)) })
	if c.NewVia != nil && c.Backend != "" {
		t.Run("Outage", func(t *testing.T) { Outage(t, c) })
	}
	if _, ok := c.New(t).(stripewebhook.StateStore); ok {
		state := func(t *testing.T) stripewebhook.StateStore { return c.New(t).(stripewebhook.StateStore) }
		t.Run("StateMarks", func(t *testing.T) { StateMarks(t, state(t)) })
		t.Run("ConcurrentAdvances", func(t *testing.T) { ConcurrentAdvances(t, state(t)) })
		t.Run("StateExpiry", func(t *testing.T) { StateExpiry(t, state(t)) })
		t.Run("StateGuard", func(t *testing.T) { StateGuard(t, state(t)) })
	}
}

func mark(t testing.TB, what string, got stripewebhook.Mark, err error, want stripewebhook.Mark) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

// StateMarks checks that a mark only ever advances to a later created: an
// older one and one of the same second leave it.
func StateMarks(t *testing.T, s stripewebhook.StateStore) {
	ctx := context.Background()
	const keep = time.Hour
	k := Key(t)
	got, err := s.LastApplied(ctx, k)
	mark(t, "LastApplied of a new key", got, err, stripewebhook.Mark{})

	first := stripewebhook.Mark{Created: 1_700_000_100, EventID: "evt_a"}
	got, err = s.Advance(ctx, k, first, keep)
	mark(t, "Advance of a new key", got, err, first)
	got, err = s.Advance(ctx, k, stripewebhook.Mark{Created: 1_700_000_090, EventID: "evt_older"}, keep)
	mark(t, "Advance to an older created", got, err, first)
	got, err = s.Advance(ctx, k, stripewebhook.Mark{Created: 1_700_000_100, EventID: "evt_tie"}, keep)
	mark(t, "Advance to the same second", got, err, first)
	got, err = s.LastApplied(ctx, k)
	mark(t, "LastApplied after them", got, err, first)

	later := stripewebhook.Mark{Created: 1_700_000_101, EventID: "evt_b"}
	got, err = s.Advance(ctx, k, later, keep)
	mark(t, "Advance to a later created", got, err, later)
	got, err = s.LastApplied(ctx, k)
	mark(t, "LastApplied", got, err, later)

	// Keys are independent of each other and of the claims.
	other := Key(t)
	got, err = s.LastApplied(ctx, other)
	mark(t, "LastApplied of another key", got, err, stripewebhook.Mark{})
	claim(t, s, k, time.Minute, stripewebhook.Claimed)
	got, err = s.LastApplied(ctx, k)
	mark(t, "LastApplied of a key also claimed", got, err, later)
}

// ConcurrentAdvances has 50 goroutines advance one key at once, in random
// order: the latest created stays, and none is told a mark older than its
// own is kept.
func ConcurrentAdvances(t *testing.T, s stripewebhook.StateStore) {
	k := Key(t)
	const n = 50
	base := int64(1_700_000_000)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			m := stripewebhook.Mark{Created: base + int64((i*37)%n), EventID: fmt.Sprintf("evt_%d", i)}
			got, err := s.Advance(context.Background(), k, m, time.Hour)
			if err != nil {
				t.Errorf("Advance: %v", err)
				return
			}
			if got.Created < m.Created {
				t.Errorf("Advance(%d) kept %d, older", m.Created, got.Created)
			}
		}()
	}
	close(start)
	wg.Wait()
	got, err := s.LastApplied(context.Background(), k)
	if err != nil || got.Created != base+n-1 {
		t.Fatalf("LastApplied = %+v, %v; want created %d", got, err, base+n-1)
	}
}

// StateExpiry checks that a mark is kept for its keep and forgotten after,
// when an older one may set it again.
func StateExpiry(t *testing.T, s stripewebhook.StateStore) {
	ctx := context.Background()
	const keep = 500 * time.Millisecond
	k := Key(t)
	m := stripewebhook.Mark{Created: 1_700_000_200, EventID: "evt_new"}
	got, err := s.Advance(ctx, k, m, keep)
	mark(t, "Advance", got, err, m)
	time.Sleep(keep + 500*time.Millisecond)
	got, err = s.LastApplied(ctx, k)
	mark(t, "LastApplied after the keep", got, err, stripewebhook.Mark{})
	older := stripewebhook.Mark{Created: 1_700_000_100, EventID: "evt_old"}
	got, err = s.Advance(ctx, k, older, time.Hour)
	mark(t, "Advance after the keep", got, err, older)
}

// ServerURL returns the URL of the real server a test needs, from the
// environment variable env, or skips t naming env and an example value: a
// plain go test runs everywhere, and says how to run the rest.
func ServerURL(t testing.TB, env, example string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		t.Skipf("set %s (e.g. %s) to run the tests that need that server", env, example)
	}
	return u
}

// Key returns a fresh random key, so that runs never see each other's.
func Key(t testing.TB) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "evt_test_" + hex.EncodeToString(b[:])
}

func claim(t testing.TB, s stripewebhook.Store, key string, lease time.Duration, want stripewebhook.ClaimStatus) string {
	t.Helper()
	c, err := s.Claim(context.Background(), key, lease)
	if err != nil {
		t.Fatalf("Claim(%s): %.300v", short(key), err)
	}
	if c.Status != want {
		t.Fatalf("Claim(%s) = %v, want %v", short(key), c.Status, want)
	}
	if (want == stripewebhook.Claimed) != (c.Token != "") {
		t.Fatalf("Claim(%s) = %v with token %q", short(key), c.Status, c.Token)
	}
	return c.Token
}

// short abbreviates the long keys of LongKeys in messages.
func short(key string) string {
	if len(key) > 60 {
		return fmt.Sprintf("%s…%s (%d bytes)", key[:40], key[len(key)-10:], len(key))
	}
	return key
}

func mustNil(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Semantics checks claim, complete and release, and that a token only
// acts on its own claim.
func Semantics(t *testing.T, s stripewebhook.Store) {
	ctx := context.Background()
	lease, keep := time.Minute, time.Hour

	k := Key(t)
	tok := claim(t, s, k, lease, stripewebhook.Claimed)
	claim(t, s, k, lease, stripewebhook.InProgress)
	if err := s.Complete(ctx, k, "not-"+tok, keep); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Complete with a foreign token = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Release with a foreign token", s.Release(ctx, k, "not-"+tok))
	claim(t, s, k, lease, stripewebhook.InProgress)
	mustNil(t, "Complete", s.Complete(ctx, k, tok, keep))
	claim(t, s, k, lease, stripewebhook.Done)
	if err := s.Complete(ctx, k, tok, keep); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("second Complete = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Release of a done key", s.Release(ctx, k, tok))
	claim(t, s, k, lease, stripewebhook.Done)

	// Release lets the next delivery run, with a new token.
	k2 := Key(t)
	tok1 := claim(t, s, k2, lease, stripewebhook.Claimed)
	mustNil(t, "Release", s.Release(ctx, k2, tok1))
	tok2 := claim(t, s, k2, lease, stripewebhook.Claimed)
	if tok1 == tok2 {
		t.Fatalf("a new claim reused token %q", tok1)
	}
	if err := s.Complete(ctx, k2, tok1, keep); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Complete with the released token = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Complete", s.Complete(ctx, k2, tok2, keep))
	claim(t, s, k2, lease, stripewebhook.Done)

	// Keys are independent; releasing an unknown key is a no-op.
	claim(t, s, Key(t), lease, stripewebhook.Claimed)
	mustNil(t, "Release of an unknown key", s.Release(ctx, Key(t), "x"))

	// Retention longer than Stripe's three days of retries is honoured.
	k3 := Key(t)
	mustNil(t, "Complete", s.Complete(ctx, k3, claim(t, s, k3, lease, stripewebhook.Claimed), stripewebhook.DefaultRetention))
	claim(t, s, k3, lease, stripewebhook.Done)
}

// LongKeys checks that any key is storable (a WithDedupKey may build long
// ones) and that long keys differing in their last byte stay distinct.
func LongKeys(t *testing.T, s stripewebhook.Store) {
	ctx := context.Background()
	noise := make([]byte, 8<<10) // incompressible, unlike a repeated byte
	_, _ = rand.Read(noise)
	base := Key(t) + ":" + base64.StdEncoding.EncodeToString(noise) + ":é\u2603'\"%_\\"
	k1, k2 := base+"1", base+"2"
	tok := claim(t, s, k1, time.Minute, stripewebhook.Claimed)
	claim(t, s, k2, time.Minute, stripewebhook.Claimed)
	claim(t, s, k1, time.Minute, stripewebhook.InProgress)
	mustNil(t, "Complete of a long key", s.Complete(ctx, k1, tok, time.Hour))
	claim(t, s, k1, time.Minute, stripewebhook.Done)
	claim(t, s, k2, time.Minute, stripewebhook.InProgress)
}

// countingHandler is a handler on s whose invoice.paid callback counts its
// runs.
func countingHandler(t *testing.T, s stripewebhook.Store, opts ...stripewebhook.HandlerOption) (*stripewebhook.Handler, *atomic.Int32) {
	runs := new(atomic.Int32)
	d := stripewebhook.NewDispatcher()
	mustNil(t, "register", d.HandleFunc("invoice.paid", func(context.Context, *stripewebhook.Event) error {
		runs.Add(1)
		return nil
	}))
	opts = append([]stripewebhook.HandlerOption{stripewebhook.WithDedup(s), stripewebhook.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret), opts...)
	mustNil(t, "NewHandler", err)
	return h, runs
}

// AbandonedDelivery checks, through a handler that fails open, that a
// delivery whose context is already done (Stripe gave up waiting) is not
// taken for a store outage: an event already processed does not run again.
func AbandonedDelivery(t *testing.T, s stripewebhook.Store) {
	h, runs := countingHandler(t, s, stripewebhook.WithDedupFailOpen())
	payload := webhooktest.WithID(t, webhooktest.Fixture(t, "invoice.paid"), Key(t))
	mustNil(t, "first delivery", h.Handle(context.Background(), payload, fixture.Header(payload, time.Now(), secret)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.Handle(ctx, payload, fixture.Header(payload, time.Now(), secret))
	if !errors.Is(err, stripewebhook.ErrAbandoned) {
		t.Fatalf("abandoned delivery: %v, want ErrAbandoned", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the callback ran %d times, want once", n)
	}
}

// LeaseExpiry checks that a claim never completed can be taken again after
// its lease, and that the first worker can then neither complete nor
// release the new claim.
func LeaseExpiry(t *testing.T, s stripewebhook.Store) {
	ctx := context.Background()
	const lease = 300 * time.Millisecond
	k := Key(t)
	old := claim(t, s, k, lease, stripewebhook.Claimed)
	claim(t, s, k, lease, stripewebhook.InProgress)
	time.Sleep(lease + 400*time.Millisecond)
	cur := claim(t, s, k, time.Minute, stripewebhook.Claimed)
	if err := s.Complete(ctx, k, old, time.Hour); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Complete by the expired holder = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Release by the expired holder", s.Release(ctx, k, old))
	claim(t, s, k, time.Minute, stripewebhook.InProgress)
	mustNil(t, "Complete by the new holder", s.Complete(ctx, k, cur, time.Hour))
	claim(t, s, k, time.Minute, stripewebhook.Done)

	// A holder whose lease ran out but whom nobody replaced may complete.
	k2 := Key(t)
	tok := claim(t, s, k2, lease, stripewebhook.Claimed)
	time.Sleep(lease + 400*time.Millisecond)
	mustNil(t, "Complete after the lease, unreplaced", s.Complete(ctx, k2, tok, time.Hour))
	claim(t, s, k2, time.Minute, stripewebhook.Done)
}

// Extend checks that a claim renewed before its lease ends is still held
// after it, that only its holder renews it, that a claim lost to another
// or done cannot be renewed, and that a renewed claim completes.
func Extend(t *testing.T, s stripewebhook.Store) {
	ctx := context.Background()
	const lease = 400 * time.Millisecond
	k := Key(t)
	tok := claim(t, s, k, lease, stripewebhook.Claimed)
	for range 3 { // held for 3 leases' worth of time by renewals
		time.Sleep(lease / 2)
		mustNil(t, "Extend by the holder", s.Extend(ctx, k, tok, lease))
		claim(t, s, k, lease, stripewebhook.InProgress)
	}
	if err := s.Extend(ctx, k, "not-"+tok, lease); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Extend with a foreign token = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Complete after renewals", s.Complete(ctx, k, tok, time.Hour))
	if err := s.Extend(ctx, k, tok, lease); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Extend of a completed claim = %v, want ErrClaimLost", err)
	}
	claim(t, s, k, lease, stripewebhook.Done)

	// Renewed too late: another took the key, and the first holder's
	// renewal must not take it back.
	k2 := Key(t)
	old := claim(t, s, k2, lease, stripewebhook.Claimed)
	time.Sleep(lease + 400*time.Millisecond)
	cur := claim(t, s, k2, time.Minute, stripewebhook.Claimed)
	if err := s.Extend(ctx, k2, old, time.Minute); !errors.Is(err, stripewebhook.ErrClaimLost) {
		t.Fatalf("Extend by the replaced holder = %v, want ErrClaimLost", err)
	}
	mustNil(t, "Extend by the new holder", s.Extend(ctx, k2, cur, time.Minute))

	// Renewed late but unreplaced: still the holder's, held again.
	k3 := Key(t)
	tok3 := claim(t, s, k3, lease, stripewebhook.Claimed)
	time.Sleep(lease + 400*time.Millisecond)
	mustNil(t, "Extend after the lease, unreplaced", s.Extend(ctx, k3, tok3, time.Minute))
	claim(t, s, k3, time.Minute, stripewebhook.InProgress)
	mustNil(t, "Complete after a late renewal", s.Complete(ctx, k3, tok3, time.Hour))
}

// Retention checks that a completed key is done for its retention and
// forgotten after.
func Retention(t *testing.T, s stripewebhook.Store) {
	ctx := context.Background()
	const keep = 500 * time.Millisecond
	k := Key(t)
	mustNil(t, "Complete", s.Complete(ctx, k, claim(t, s, k, time.Minute, stripewebhook.Claimed), keep))
	claim(t, s, k, time.Minute, stripewebhook.Done)
	time.Sleep(keep + 500*time.Millisecond)
	claim(t, s, k, time.Minute, stripewebhook.Claimed)
}

// ConcurrentClaims has 100 goroutines claim one key at once: exactly one
// wins.
func ConcurrentClaims(t *testing.T, s stripewebhook.Store) {
	k := Key(t)
	var won, inProgress atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := s.Claim(context.Background(), k, time.Minute)
			if err != nil {
				t.Errorf("Claim: %v", err)
				return
			}
			switch c.Status {
			case stripewebhook.Claimed:
				won.Add(1)
			case stripewebhook.InProgress:
				inProgress.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if won.Load() != 1 || inProgress.Load() != 99 {
		t.Fatalf("%d claims won and %d in progress, want 1 and 99", won.Load(), inProgress.Load())
	}
}

const secret = "whsec_dedupstoretest"

// Replicas runs 4 handlers, each behind its own http.Server on loopback,
// on one store; delivers 50 distinct events 4 times each, concurrently, to
// random instances, retrying each delivery until it gets a 2xx as Stripe
// would; a third of the callbacks fail on their first run. In the end each
// event's callback succeeded exactly once, and every 2xx came after that
// event's success.
func Replicas(t *testing.T, s stripewebhook.Store) {
	const instances, events, copies = 4, 50, 4
	var mu sync.Mutex
	succeeded := map[string]int{}
	attempts := map[string]int{}
	callback := func(ctx context.Context, e *stripewebhook.Event) error {
		mu.Lock()
		attempts[e.ID]++
		n := attempts[e.ID]
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // real work takes time: overlap the copies
		if n == 1 && e.ID[len(e.ID)-1]%3 == 0 {
			return errors.New("first run fails")
		}
		mu.Lock()
		succeeded[e.ID]++
		mu.Unlock()
		return nil
	}
	var urls []string
	for range instances {
		d := stripewebhook.NewDispatcher()
		mustNil(t, "register", d.HandleFunc("invoice.paid", callback))
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret),
			stripewebhook.WithDedup(s), stripewebhook.WithLease(10*time.Second),
			stripewebhook.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		mustNil(t, "NewHandler", err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	base := webhooktest.Fixture(t, "invoice.paid")
	prefix := Key(t)
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	var acks atomic.Int32
	for i := range events {
		id := fmt.Sprintf("%s_%02d", prefix, i)
		payload := webhooktest.WithID(t, base, id)
		for c := range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for try := 0; try < 50; try++ {
					url := urls[(i*7+c*3+try)%instances]
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
					req.Header.Set("Stripe-Signature", fixture.Header(payload, time.Now(), secret))
					resp, err := client.Do(req)
					if err != nil {
						t.Errorf("deliver %s: %v", id, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						mu.Lock()
						done := succeeded[id]
						mu.Unlock()
						if done != 1 {
							t.Errorf("%s acknowledged with %d successful runs", id, done)
						}
						acks.Add(1)
						return
					}
					if resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusInternalServerError {
						t.Errorf("%s: status %d", id, resp.StatusCode)
						return
					}
					time.Sleep(time.Duration(5+try*5) * time.Millisecond)
				}
				t.Errorf("%s never acknowledged", id)
			}()
		}
	}
	wg.Wait()
	if int(acks.Load()) != events*copies {
		t.Fatalf("%d of %d deliveries acknowledged", acks.Load(), events*copies)
	}
	for i := range events {
		id := fmt.Sprintf("%s_%02d", prefix, i)
		if succeeded[id] != 1 {
			t.Errorf("%s succeeded %d times, want exactly once", id, succeeded[id])
		}
	}
}

// Outage cuts the store off from its server: deliveries get 503, the
// callback does not run and nothing is marked done; once the server is back,
// the retry runs the callback once.
func Outage(t *testing.T, c Config) {
	p := NewProxy(t, c.Backend)
	h, runs := countingHandler(t, c.NewVia(t, p.Addr()))
	payload := webhooktest.WithID(t, webhooktest.Fixture(t, "invoice.paid"), Key(t))
	deliver := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, webhooktest.NewRequest(t, "/webhook", payload, secret))
		return rec.Code
	}

	p.Down()
	for i := range 3 {
		if code := deliver(); code != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d with the store down: %d, want 503", i, code)
		}
	}
	if runs.Load() != 0 {
		t.Fatalf("the callback ran %d times with the store down", runs.Load())
	}
	p.Up()
	// Pools reconnect at their own pace: Stripe's retries give them time.
	var code int
	for try := 0; try < 50; try++ {
		if code = deliver(); code == http.StatusOK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Fatalf("after the store came back: %d, want 200", code)
	}
	if code := deliver(); code != http.StatusOK {
		t.Fatalf("duplicate after recovery: %d", code)
	}
	if runs.Load() != 1 {
		t.Fatalf("the callback ran %d times, want once", runs.Load())
	}
}

// Proxy forwards TCP connections on loopback to a backend and can cut them
// all off, to simulate a store outage.
type Proxy struct {
	t       testing.TB
	ln      net.Listener
	backend string
	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]bool
}

// NewProxy starts a proxy to backend, closed at the end of the test.
func NewProxy(t testing.TB, backend string) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Down() })
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Down closes every connection and refuses new ones.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Up accepts connections again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.backend, 2*time.Second)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[b] = true, true
		p.mu.Unlock()
		go pipe(c, b)
		go pipe(b, c)
	}
}

func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// StateGuard delivers a subscription's lifecycle newest first, all at once,
// to two handlers on s (two replicas) with an OnLatest callback: only the
// newest state, canceled, is applied, and every event's action runs once.
func StateGuard(t *testing.T, s stripewebhook.StateStore) {
	sub := "sub_" + Key(t)[len("evt_test_"):] // a subscription of its own, so that no earlier run's mark applies
	var mu sync.Mutex
	var applied []string
	actions := map[string]int{}
	var replicas [2]*stripewebhook.Handler
	for i := range replicas {
		d := stripewebhook.NewDispatcher()
		mustNil(t, "OnLatest", stripewebhook.OnLatest(d, "customer.subscription.*", func(ctx context.Context, e *stripewebhook.Event, obj *stripe.Subscription) error {
			mu.Lock()
			defer mu.Unlock()
			applied = append(applied, string(obj.Status))
			return nil
		}))
		mustNil(t, "HandleFunc", d.HandleFunc("*", func(ctx context.Context, e *stripewebhook.Event) error {
			mu.Lock()
			defer mu.Unlock()
			actions[e.ID]++
			return nil
		}))
		h, err := stripewebhook.NewHandler(d, stripewebhook.Secrets(secret), stripewebhook.WithDedup(s),
			stripewebhook.WithLockKey(stripewebhook.SubscriptionKey), stripewebhook.WithLockWait(50*time.Millisecond),
			stripewebhook.WithLogger(slog.New(slog.DiscardHandler)))
		mustNil(t, "NewHandler", err)
		replicas[i] = h
	}
	flow := webhooktest.SubscriptionFlow(t)
	var wg sync.WaitGroup
	for i, payload := range fixture.Reversed(flow) {
		payload = webhooktest.Vary(t, payload, fixture.ID(Key(t)), subscriptionOf(payload, sub))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 2 * time.Millisecond) // newest first, mostly
			for range 200 {                                     // Stripe's retries of a 409
				err := replicas[i%2].Handle(context.Background(), payload, fixture.Header(payload, time.Now(), secret))
				if stripewebhook.StatusCode(err) == http.StatusOK {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Errorf("not accepted")
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(actions) != len(flow) {
		t.Fatalf("%d events ran their action, want %d", len(actions), len(flow))
	}
	for id, n := range actions {
		if n != 1 {
			t.Errorf("%s: action ran %d times", id, n)
		}
	}
	if len(applied) == 0 || applied[len(applied)-1] != "canceled" {
		t.Fatalf("states applied %v: the last is not the newest (canceled)", applied)
	}
}

// subscriptionOf moves a flow event to subscription sub: a subscription
// event's object, or an invoice's or session's subscription.
func subscriptionOf(payload []byte, sub string) fixture.Edit {
	var ev struct{ Type string }
	_ = json.Unmarshal(payload, &ev)
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		return fixture.ObjectField("id", sub)
	case strings.HasPrefix(ev.Type, "invoice."):
		return fixture.ObjectField("parent.subscription_details.subscription", sub)
	}
	return fixture.ObjectField("subscription", sub)
}
