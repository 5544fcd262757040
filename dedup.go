package stripewebhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ClaimStatus is the state of an event key as [Store.Claim] found it.
type ClaimStatus int

const (
	// Claimed: the key was new (or its previous claim's lease had expired);
	// the caller now holds it and must Complete or Release it.
	Claimed ClaimStatus = iota + 1
	// InProgress: another worker holds an unexpired claim on the key.
	InProgress
	// Done: the key was completed and is within its retention.
	Done
)

func (s ClaimStatus) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case InProgress:
		return "in progress"
	case Done:
		return "done"
	}
	return "ClaimStatus(" + strconv.Itoa(int(s)) + ")"
}

// Claim is the result of [Store.Claim]. Token identifies the claim when
// Status is Claimed, and is empty otherwise.
type Claim struct {
	Status ClaimStatus
	Token  string
}

// ErrClaimLost is returned by [Store.Complete] when the caller's claim is no
// longer the one on the key: its lease expired and another worker claimed
// the key, or completed it.
var ErrClaimLost = errors.New("stripewebhook: dedup claim lost to another worker")

// Store is the dedup hook: it makes sure each event is processed once, even
// when Stripe delivers it several times, concurrently, or to several
// replicas. A Store must be safe for concurrent use. The contract, which the
// conformance suite in package dedupstoretest checks:
//
//   - Claim atomically looks the key up. Absent, or claimed with an expired
//     lease: it records a new claim with a fresh unique token and a lease of
//     the given duration, and returns {Claimed, token}. Claimed with an
//     unexpired lease: {InProgress, ""}. Completed: {Done, ""}.
//   - Complete marks the key done, to be kept for retention, if the claim
//     with token is still the key's latest claim (even if its lease expired
//     meanwhile) or the key has vanished. If another claim took over, or the
//     key is already done, it changes nothing and returns [ErrClaimLost].
//   - Release deletes the claim with token, so that the next delivery runs.
//     If the key is not held with token, Release changes nothing and returns
//     nil.
//   - Extend renews the claim with token for another lease from now, if it
//     is still the key's latest claim and not done (even if its lease
//     expired meanwhile), or the key has vanished (it is then held with
//     token again); otherwise it changes nothing and returns
//     [ErrClaimLost]. The pipeline extends every claim and object lock it
//     holds for longer than a third of the lease, so that a lease can be
//     short (a crashed process's claims free soon) while a callback runs
//     for as long as it needs.
//
// Errors other than ErrClaimLost mean the store could not be reached or
// failed; the handler then answers 503 (see [WithDedupFailOpen]).
type Store interface {
	Claim(ctx context.Context, key string, lease time.Duration) (Claim, error)
	Complete(ctx context.Context, key, token string, retention time.Duration) error
	Release(ctx context.Context, key, token string) error
	Extend(ctx context.Context, key, token string, lease time.Duration) error
}

// Dedup defaults.
const (
	// DefaultLease bounds how long a claim blocks other deliveries of the
	// same event once its holder stops renewing it: a process that crashed
	// mid-callback loses its claims after it, and the next delivery runs
	// the event. A callback that runs longer keeps its claim: the pipeline
	// renews it (see [Store]'s Extend).
	DefaultLease = 30 * time.Second
	// DefaultRetention is how long a completed event is remembered: longer
	// than Stripe's automatic retries (three days in live mode) and than a
	// manual resend of a recent event is likely to come.
	DefaultRetention = 7 * 24 * time.Hour

	// StripeRetryWindow is how long Stripe retries an event in live mode
	// (three days), the shortest [WithRetention] accepted.
	StripeRetryWindow = 72 * time.Hour
	// DefaultMemoryEntries is the size of the default in-memory store.
	DefaultMemoryEntries = 100_000
)

// NewToken returns a fresh random claim token (128 bits, in hex), for Store
// implementations whose tokens must be unique across processes.
func NewToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// ErrStoreFull is returned by [MemoryStore.Claim] when every entry is an
// unexpired claim in progress and none can be evicted.
var ErrStoreFull = errors.New("stripewebhook: in-memory dedup store full of claims in progress")

// MemoryStore is a [Store] in the process's memory, bounded in size. It
// dedups deliveries to one process only: replicas behind a load balancer
// need a shared store (see the redisstore and pgstore modules). When full,
// it evicts expired entries first, then the least recently written
// completed ones. It is safe for concurrent use.
type MemoryStore struct {
	now    func() time.Time
	max    int
	logger *slog.Logger

	shortened atomic.Bool // a completed event was evicted before its retention ended

	mu      sync.Mutex
	entries map[string]*memEntry
	order   memEntry // sentinel of a ring, least recently written first
	seq     uint64
	marks   map[string]memMark // the state marks (state.go)
}

// memEntry is one key, in an intrusive ring ordered by last write: one
// allocation per claim, its token included.
type memEntry struct {
	prev, next *memEntry
	key        string
	token      string // points into tok for the store's own claims
	done       bool
	expires    time.Time
	tok        [16]byte
}

// NewMemoryStore returns a MemoryStore holding at most maxEntries keys
// (DefaultMemoryEntries if maxEntries <= 0). Of the options, [WithClock]
// and [WithLogger] apply. The first time it must evict a completed event
// before its retention ends (so that a late duplicate of it would run
// again), it says so once in the log.
func NewMemoryStore(maxEntries int, opts ...MemoryStoreOption) *MemoryStore {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryEntries
	}
	c := memoryConfig{now: time.Now}
	for _, o := range opts {
		o.applyMemoryStore(&c)
	}
	logger := c.logger
	if logger == nil {
		logger = slog.Default()
	}
	m := &MemoryStore{now: c.now, max: maxEntries, logger: logger, entries: make(map[string]*memEntry), marks: make(map[string]memMark)}
	m.order.prev, m.order.next = &m.order, &m.order
	return m
}

// Claim implements [Store]. Like a store over the network, it fails with
// the context's error if ctx is done.
func (m *MemoryStore) Claim(ctx context.Context, key string, lease time.Duration) (Claim, error) {
	if err := ctx.Err(); err != nil {
		return Claim{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		if now.Before(e.expires) {
			if e.done {
				return Claim{Status: Done}, nil
			}
			return Claim{Status: InProgress}, nil
		}
		m.remove(e)
	}
	if len(m.entries) >= m.max && !m.evict(now) {
		return Claim{}, ErrStoreFull
	}
	m.seq++
	e := &memEntry{key: key, expires: now.Add(lease)}
	n := len(strconv.AppendUint(e.tok[:0], m.seq, 36))
	// The token's bytes live in the entry and never change after this.
	e.token = unsafe.String(&e.tok[0], n)
	m.entries[key] = e
	m.pushBack(e)
	return Claim{Status: Claimed, Token: e.token}, nil
}

// Complete implements [Store].
func (m *MemoryStore) Complete(_ context.Context, key, token string, retention time.Duration) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.held(key, token, now)
	if err != nil {
		return err
	}
	e.done = true
	e.expires = now.Add(retention)
	m.unlink(e)
	m.pushBack(e)
	return nil
}

// Release implements [Store].
func (m *MemoryStore) Release(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && e.token == token && !e.done {
		m.remove(e)
	}
	return nil
}

// Extend implements [Store].
func (m *MemoryStore) Extend(ctx context.Context, key, token string, lease time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.held(key, token, now)
	if err != nil {
		return err
	}
	e.expires = now.Add(lease)
	return nil
}

// held returns key's entry if token holds it, not done, recreating it
// for token if it has vanished (evicted): Complete and Extend act on it.
func (m *MemoryStore) held(key, token string, now time.Time) (*memEntry, error) {
	e, ok := m.entries[key]
	if !ok {
		if len(m.entries) >= m.max && !m.evict(now) {
			return nil, ErrStoreFull
		}
		e = &memEntry{key: key, token: token}
		m.entries[key] = e
		m.pushBack(e)
	}
	if e.token != token || e.done {
		return nil, ErrClaimLost
	}
	return e, nil
}

// Len returns the number of keys held, expired ones included until they are
// evicted.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *MemoryStore) pushBack(e *memEntry) {
	last := m.order.prev
	e.prev, e.next = last, &m.order
	last.next, m.order.prev = e, e
}

func (m *MemoryStore) unlink(e *memEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (m *MemoryStore) remove(e *memEntry) {
	delete(m.entries, e.key)
	m.unlink(e)
}

// evict makes room for one entry: the least recently written entry that
// is expired or completed. Entries are written in roughly expiry order (one
// lease, one retention), so that is the one nearest its end. Claims in
// progress are skipped, never evicted; there are few of them, so the scan
// from the front is short.
func (m *MemoryStore) evict(now time.Time) bool {
	for e := m.order.next; e != &m.order; e = e.next {
		if e.done || !now.Before(e.expires) {
			if e.done && now.Before(e.expires) && !m.shortened.Load() && !m.shortened.Swap(true) {
				m.logger.Warn("stripewebhook: in-memory dedup store is full and evicts completed events before their retention ends; "+
					"a late duplicate of an evicted event runs again (raise maxEntries or use a shared store)",
					slog.Int("max_entries", m.max), slog.Duration("retention_left", e.expires.Sub(now)))
			}
			m.remove(e)
			return true
		}
	}
	return false
}
