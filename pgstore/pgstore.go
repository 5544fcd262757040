// Package pgstore is a stripewebhook.Store on PostgreSQL, through pgx v5, so
// that replicas behind a load balancer process each Stripe event once.
//
// One row per event key, in a table that [Store.Migrate] creates (or that
// you create from [Schema] with your migration tool):
//
//	CREATE TABLE stripewebhook_dedup (
//	    key          text PRIMARY KEY,
//	    token        text NOT NULL,         -- the claim's holder
//	    done         boolean NOT NULL,      -- completed
//	    expires_at   timestamptz NOT NULL,  -- end of the lease, or of the retention
//	    completed_at timestamptz
//	);
//
// Keys longer than [MaxKeyLen] bytes (possible with WithDedupKey) are
// stored as "sha256:" and the hex SHA-256 of the key, since a btree index
// entry cannot hold them.
//
// A claim is a lock, not a record: it commits without waiting for the WAL
// flush (synchronous_commit off, for that transaction only), which halves
// the fsyncs per event. A crash of the PostgreSQL server can lose the claims
// of its last fraction of a second, so that a duplicate delivered in that
// moment runs alongside the first. Completion, which keeps a duplicate from
// running days later, commits durably before the handler answers 200.
//
// Claim, Complete and Release are one statement each, so they are atomic,
// and Complete and Release only act on the caller's own claim. The
// database's clock decides expiry, so replicas' clocks do not matter.
// Expired rows are taken over in place; [Store.Cleanup] deletes them, to be
// run now and then (a daily job).
//
// It is a stripewebhook.StateStore too: the objects' state marks are rows
// of a second table, the first's name with "_state" (stripewebhook_dedup_state:
// key, created, event_id, expires_at), which Migrate creates with the first.
// Advance is one INSERT … ON CONFLICT DO UPDATE … WHERE the kept created is
// older, committed durably.
package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stripewebhook/stripewebhook"
)

// DefaultName is the table's default name.
const DefaultName = "stripewebhook_dedup"

// MaxKeyLen is the longest key stored as it is; longer ones are hashed.
const MaxKeyLen = 256

// DB is what the store needs of a pool: *pgxpool.Pool (the usual choice),
// *pgx.Conn, or a pgx.Tx (whose claims then commit with the transaction).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Store is a stripewebhook.Store on PostgreSQL. It is safe for concurrent
// use if db is (a pool is).
type Store struct {
	db           DB
	table, state string // sanitized identifiers: the claims', the state marks'

	claimSQL, completeSQL, extendSQL, releaseSQL, cleanupSQL string
	lastAppliedSQL, advanceSQL                               string
}

var _ stripewebhook.StateStore = (*Store)(nil)

// Option configures a Store.
type Option func(*config)

type config struct{ table string }

// WithName replaces DefaultName, the table's name, to share a database
// between applications; it may be schema-qualified ("billing.stripe_dedup").
func WithName(name string) Option { return func(c *config) { c.table = name } }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// New returns a Store on db, usually a *pgxpool.Pool. The caller owns db.
// The table must exist: see [Store.Migrate]. A nil db or an option out of
// range is an error matching [stripewebhook.ErrInvalidOption].
func New(db DB, opts ...Option) (*Store, error) {
	c := config{table: DefaultName}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case db == nil:
		return nil, fmt.Errorf("%w: pgstore.New: nil DB", stripewebhook.ErrInvalidOption)
	case !identRE.MatchString(c.table):
		return nil, fmt.Errorf("%w: pgstore.WithName(%q): not a table name (letters, digits, _, one optional schema)", stripewebhook.ErrInvalidOption, c.table)
	}
	t := pgx.Identifier(splitDot(c.table)).Sanitize()
	st := pgx.Identifier(splitDot(c.table + "_state")).Sanitize()
	return &Store{
		db:    db,
		table: t,
		state: st,
		// The CTE claims a new or expired key; the outer select reads, in the
		// statement's snapshot, the row that stopped it, if any.
		claimSQL: `WITH claimed AS (
	INSERT INTO ` + t + ` AS d (key, token, done, expires_at)
	VALUES ($1, $2, false, now() + $3::bigint * interval '1 millisecond')
	ON CONFLICT (key) DO UPDATE
		SET token = EXCLUDED.token, done = false, expires_at = EXCLUDED.expires_at, completed_at = NULL
		WHERE d.expires_at <= now()
	RETURNING token
)
SELECT (SELECT token FROM claimed), (SELECT done FROM ` + t + ` WHERE key = $1)`,
		completeSQL: `INSERT INTO ` + t + ` AS d (key, token, done, expires_at, completed_at)
VALUES ($1, $2, true, now() + $3::bigint * interval '1 millisecond', now())
ON CONFLICT (key) DO UPDATE
	SET done = true, expires_at = EXCLUDED.expires_at, completed_at = now()
	WHERE d.token = EXCLUDED.token AND NOT d.done
RETURNING true`,
		extendSQL: `INSERT INTO ` + t + ` AS d (key, token, done, expires_at)
VALUES ($1, $2, false, now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE
	SET expires_at = EXCLUDED.expires_at
	WHERE d.token = EXCLUDED.token AND NOT d.done
RETURNING true`,
		releaseSQL: `DELETE FROM ` + t + ` WHERE key = $1 AND token = $2 AND NOT done`,
		cleanupSQL: `WITH marks AS (DELETE FROM ` + st + ` WHERE expires_at < now() RETURNING 1),
	claims AS (DELETE FROM ` + t + ` WHERE expires_at < now() RETURNING 1)
SELECT (SELECT count(*) FROM marks) + (SELECT count(*) FROM claims)`,
		lastAppliedSQL: `SELECT created, event_id FROM ` + st + ` WHERE key = $1 AND expires_at > now()`,
		// Returns the row only when it was written: a mark that is not
		// later leaves the row, which LastApplied then reads.
		advanceSQL: `INSERT INTO ` + st + ` AS m (key, created, event_id, expires_at)
VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE
	SET created = EXCLUDED.created, event_id = EXCLUDED.event_id, expires_at = EXCLUDED.expires_at
	WHERE m.created < EXCLUDED.created OR m.expires_at <= now()
RETURNING created, event_id`,
	}, nil
}

func splitDot(s string) []string {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return []string{s[:i], s[i+1:]}
		}
	}
	return []string{s}
}

// Schema returns the DDL that Migrate runs, for migration tools.
func (s *Store) Schema() string {
	return `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
	key          text PRIMARY KEY,
	token        text NOT NULL,
	done         boolean NOT NULL,
	expires_at   timestamptz NOT NULL,
	completed_at timestamptz
);
CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{indexName(s.table)}.Sanitize() + ` ON ` + s.table + ` (expires_at);
CREATE TABLE IF NOT EXISTS ` + s.state + ` (
	key        text PRIMARY KEY,
	created    bigint NOT NULL,  -- the applying event's created, Unix seconds
	event_id   text NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ` + pgx.Identifier{indexName(s.state)}.Sanitize() + ` ON ` + s.state + ` (expires_at);`
}

func indexName(table string) string {
	out := []byte{}
	for i := 0; i < len(table); i++ {
		if c := table[i]; c != '"' {
			if c == '.' {
				c = '_'
			}
			out = append(out, c)
		}
	}
	return string(out) + "_expires_at_idx"
}

// Migrate creates the tables and their indexes if they do not exist. Replicas
// starting together may all call it: CREATE … IF NOT EXISTS is not safe
// concurrently in PostgreSQL, so the statements run under a transaction
// advisory lock of the table's name (one implicit transaction: the
// statements go in one simple-protocol query).
func (s *Store) Migrate(ctx context.Context) error {
	lock := `SELECT pg_advisory_xact_lock(` + strconv.Itoa(migrateLockClass) + `, hashtext('` + s.table + `'));` + "\n"
	if _, err := s.db.Exec(ctx, lock+s.Schema()); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// migrateLockClass is the first key of Migrate's advisory lock: the
// project's own class, so that it cannot collide with an application's
// single-key locks.
const migrateLockClass = 0x5743 // "WC"

// storedKey is key as the table holds it: itself, or its hash when long.
func storedKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Claim implements stripewebhook.Store.
func (s *Store) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	token, err := stripewebhook.NewToken()
	if err != nil {
		return stripewebhook.Claim{}, err
	}
	var got *string
	var done *bool
	args := []any{storedKey(key), token, max(lease.Milliseconds(), 1)}
	if _, inTx := s.db.(pgx.Tx); inTx {
		err = s.db.QueryRow(ctx, s.claimSQL, args...).Scan(&got, &done)
	} else {
		// The claim is a lock, not a record: it commits without waiting for
		// the WAL flush, in its own transaction, in one round trip.
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL synchronous_commit TO OFF")
		b.Queue(s.claimSQL, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&got, &done) })
		b.Queue("COMMIT")
		err = s.db.SendBatch(ctx, b).Close()
	}
	if err != nil {
		return stripewebhook.Claim{}, fmt.Errorf("pgstore: claim: %w", err)
	}
	switch {
	case got != nil:
		return stripewebhook.Claim{Status: stripewebhook.Claimed, Token: *got}, nil
	case done != nil && *done:
		return stripewebhook.Claim{Status: stripewebhook.Done}, nil
	}
	// Held unexpired, or inserted by a transaction our snapshot predates.
	return stripewebhook.Claim{Status: stripewebhook.InProgress}, nil
}

// Complete implements stripewebhook.Store.
func (s *Store) Complete(ctx context.Context, key, token string, retention time.Duration) error {
	var ok bool
	err := s.db.QueryRow(ctx, s.completeSQL, storedKey(key), token, max(retention.Milliseconds(), 1)).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return stripewebhook.ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("pgstore: complete: %w", err)
	}
	return nil
}

// Extend implements stripewebhook.Store.
func (s *Store) Extend(ctx context.Context, key, token string, lease time.Duration) error {
	var ok bool
	err := s.db.QueryRow(ctx, s.extendSQL, storedKey(key), token, max(lease.Milliseconds(), 1)).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return stripewebhook.ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("pgstore: extend: %w", err)
	}
	return nil
}

// Release implements stripewebhook.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	if _, err := s.db.Exec(ctx, s.releaseSQL, storedKey(key), token); err != nil {
		return fmt.Errorf("pgstore: release: %w", err)
	}
	return nil
}

// Cleanup deletes the rows whose lease, retention or keep has ended
// (completed events older than their retention, abandoned claims, expired
// state marks) and returns how many.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, s.cleanupSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgstore: cleanup: %w", err)
	}
	return n, nil
}

// LastApplied implements stripewebhook.StateStore.
func (s *Store) LastApplied(ctx context.Context, key string) (stripewebhook.Mark, error) {
	var m stripewebhook.Mark
	err := s.db.QueryRow(ctx, s.lastAppliedSQL, storedKey(key)).Scan(&m.Created, &m.EventID)
	if errors.Is(err, pgx.ErrNoRows) {
		return stripewebhook.Mark{}, nil
	}
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("pgstore: last applied: %w", err)
	}
	return m, nil
}

// Advance implements stripewebhook.StateStore: one INSERT … ON CONFLICT DO
// UPDATE … WHERE the kept mark is older, committed durably.
func (s *Store) Advance(ctx context.Context, key string, m stripewebhook.Mark, keep time.Duration) (stripewebhook.Mark, error) {
	var got stripewebhook.Mark
	err := s.db.QueryRow(ctx, s.advanceSQL, storedKey(key), m.Created, m.EventID, max(keep.Milliseconds(), 1)).Scan(&got.Created, &got.EventID)
	if errors.Is(err, pgx.ErrNoRows) {
		// A later mark is kept; this statement's snapshot is newer than it.
		return s.LastApplied(ctx, key)
	}
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("pgstore: advance: %w", err)
	}
	return got, nil
}
