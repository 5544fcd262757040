package stripewebhook

import (
	"context"
	"time"
)

// Mark is what a [StateStore] keeps of an object: the newest snapshot of
// it that state callbacks ([OnLatest]) applied.
type Mark struct {
	Created int64  // the applying event's created (Unix seconds)
	EventID string // the applying event
}

// StateStore is a [Store] that also keeps, per object, the [Mark] of the
// newest snapshot applied, so that an event older than it is known stale
// on every replica: the guard [OnLatest] registers callbacks under. The
// stores of this repository (MemoryStore, redisstore, pgstore) are
// StateStores. The contract, which package dedupstoretest checks:
//
//   - LastApplied returns the key's Mark, or the zero Mark when none is kept
//     (none was set, or it expired).
//   - Advance keeps m for keep if the key has no Mark or m.Created is later
//     than the kept Mark's, and returns the Mark kept after the call. An m
//     that is not later (older, or of the same second) changes nothing.
//     It is atomic: of concurrent Advances, the latest Created stays.
//
// The handler calls them holding the object's lock, so that the check and
// the advance of one object do not interleave; Advance's own atomicity
// keeps the Mark from going back even when a lock's lease ran out.
type StateStore interface {
	Store
	LastApplied(ctx context.Context, key string) (Mark, error)
	Advance(ctx context.Context, key string, m Mark, keep time.Duration) (Mark, error)
}

// memMark is a Mark in a MemoryStore, with its end.
type memMark struct {
	Mark
	expires time.Time
}

var _ StateStore = (*MemoryStore)(nil)

// LastApplied implements [StateStore].
func (m *MemoryStore) LastApplied(ctx context.Context, key string) (Mark, error) {
	if err := ctx.Err(); err != nil {
		return Mark{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.marks[key]; ok && now.Before(k.expires) {
		return k.Mark, nil
	}
	return Mark{}, nil
}

// Advance implements [StateStore]. The marks are bounded by the store's
// maxEntries as the claims are: when full, the expired go first, then the
// one nearest its end.
func (m *MemoryStore) Advance(ctx context.Context, key string, mk Mark, keep time.Duration) (Mark, error) {
	if err := ctx.Err(); err != nil {
		return Mark{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.marks[key]; ok && now.Before(k.expires) && mk.Created <= k.Created {
		return k.Mark, nil
	}
	if _, ok := m.marks[key]; !ok && len(m.marks) >= m.max {
		m.evictMark(now)
	}
	m.marks[key] = memMark{Mark: mk, expires: now.Add(keep)}
	return mk, nil
}

// evictMark removes the expired marks, or else the one nearest its end.
func (m *MemoryStore) evictMark(now time.Time) {
	var first string
	var end time.Time
	for key, k := range m.marks {
		if !now.Before(k.expires) {
			delete(m.marks, key)
			continue
		}
		if first == "" || k.expires.Before(end) {
			first, end = key, k.expires
		}
	}
	if len(m.marks) >= m.max {
		delete(m.marks, first)
	}
}
