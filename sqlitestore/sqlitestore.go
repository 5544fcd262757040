// Package sqlitestore is a stripewebhook.Store on SQLite, through
// database/sql, for the asynchronous mode on one machine: with River's
// SQLite queue (rivqueue.NewSQLite) in the same database file, what ran is
// remembered across a crash exactly as what is queued is, where the
// in-memory store forgets it and the queue's rescued jobs would run again.
//
//	db, _ := sql.Open("sqlite", "file:queue.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
//	store, err := sqlitestore.New(db)
//	err = store.Migrate(ctx) // its two tables, if missing
//	q, err := rivqueue.NewSQLite(db)
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
//
// Open db with a driver of your choice (modernc.org/sqlite, pure Go, is
// what this module is tested with), a busy timeout (writers wait for each
// other instead of failing with SQLITE_BUSY) and WAL mode. Each write is
// one statement in its own transaction, committed before it returns: with
// WAL and synchronous=NORMAL (the usual pairing) a process crash loses
// nothing, a power loss the last commits; synchronous=FULL keeps those too.
//
// One row per event key in a table [Store.Migrate] creates (see [Schema]):
// key, token (the claim's holder), done, expires_at (the end of the lease
// or of the retention, in Unix milliseconds of the process's clock, which
// every process on the machine shares). The objects' state marks live in
// a second table, the first's name with "_state". Claim, Complete, Extend,
// Release and Advance are each one INSERT … ON CONFLICT or DELETE, atomic
// since SQLite runs one writer at a time. Expired rows are taken over in
// place; [Store.Cleanup] deletes them, to be run now and then.
//
// It is safe for concurrent use (database/sql's pool is).
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/stripewebhook/stripewebhook"
)

// DefaultName is the table's default name.
const DefaultName = "stripewebhook_dedup"

// Store is a stripewebhook.Store and StateStore on SQLite.
type Store struct {
	db  *sql.DB
	now func() time.Time

	schema                                                  string
	claimSQL, doneSQL, completeSQL, extendSQL, releaseSQL   string
	lastAppliedSQL, advanceSQL, cleanupClaims, cleanupMarks string
}

var _ stripewebhook.StateStore = (*Store)(nil)

// Option configures a Store.
type Option func(*config)

type config struct{ table string }

// WithName replaces DefaultName, the table's name (the state marks' is
// name+"_state"), to share a database between applications.
func WithName(name string) Option { return func(c *config) { c.table = name } }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New returns a Store on db. The caller owns db. The tables must exist:
// see [Store.Migrate]. A nil db or an option out of range is an error
// matching [stripewebhook.ErrInvalidOption].
func New(db *sql.DB, opts ...Option) (*Store, error) {
	c := config{table: DefaultName}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case db == nil:
		return nil, fmt.Errorf("%w: sqlitestore.New: nil DB", stripewebhook.ErrInvalidOption)
	case !identRE.MatchString(c.table):
		return nil, fmt.Errorf("%w: sqlitestore.WithName(%q): not a table name (letters, digits, _)", stripewebhook.ErrInvalidOption, c.table)
	}
	t, st := `"`+c.table+`"`, `"`+c.table+`_state"`
	return &Store{
		db: db, now: time.Now,
		schema: Schema(c.table),
		// ?1 key, ?2 token, ?3 now, ?4 lease or retention (ms).
		claimSQL: `INSERT INTO ` + t + ` AS d (key, token, done, expires_at) VALUES (?1, ?2, 0, ?3 + ?4)
ON CONFLICT (key) DO UPDATE SET token = excluded.token, done = 0, expires_at = excluded.expires_at WHERE d.expires_at <= ?3
RETURNING token`,
		doneSQL: `SELECT done FROM ` + t + ` WHERE key = ?1`,
		completeSQL: `INSERT INTO ` + t + ` AS d (key, token, done, expires_at) VALUES (?1, ?2, 1, ?3 + ?4)
ON CONFLICT (key) DO UPDATE SET done = 1, expires_at = excluded.expires_at WHERE d.token = excluded.token AND d.done = 0
RETURNING 1`,
		extendSQL: `INSERT INTO ` + t + ` AS d (key, token, done, expires_at) VALUES (?1, ?2, 0, ?3 + ?4)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE d.token = excluded.token AND d.done = 0
RETURNING 1`,
		releaseSQL:     `DELETE FROM ` + t + ` WHERE key = ?1 AND token = ?2 AND done = 0`,
		lastAppliedSQL: `SELECT created, event_id FROM ` + st + ` WHERE key = ?1 AND expires_at > ?2`,
		// ?1 key, ?2 created, ?3 event id, ?4 now, ?5 keep (ms).
		advanceSQL: `INSERT INTO ` + st + ` AS m (key, created, event_id, expires_at) VALUES (?1, ?2, ?3, ?4 + ?5)
ON CONFLICT (key) DO UPDATE SET created = excluded.created, event_id = excluded.event_id, expires_at = excluded.expires_at
	WHERE m.created < excluded.created OR m.expires_at <= ?4
RETURNING created, event_id`,
		cleanupClaims: `DELETE FROM ` + t + ` WHERE expires_at <= ?1`,
		cleanupMarks:  `DELETE FROM ` + st + ` WHERE expires_at <= ?1`,
	}, nil
}

// Schema is the SQL that creates the tables of a Store whose WithName is
// table, for a migration tool of your own.
func Schema(table string) string {
	return `CREATE TABLE IF NOT EXISTS "` + table + `" (
	key        TEXT PRIMARY KEY,
	token      TEXT NOT NULL,
	done       INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS "` + table + `_state" (
	key        TEXT PRIMARY KEY,
	created    INTEGER NOT NULL,
	event_id   TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;`
}

// Migrate creates the tables if they are missing.
func (s *Store) Migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.schema); err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	return nil
}

func (s *Store) nowMS() int64 { return s.now().UnixMilli() }

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Claim implements stripewebhook.Store.
func (s *Store) Claim(ctx context.Context, key string, lease time.Duration) (stripewebhook.Claim, error) {
	token, err := stripewebhook.NewToken()
	if err != nil {
		return stripewebhook.Claim{}, fmt.Errorf("sqlitestore: claim: %w", err)
	}
	var got string
	err = s.db.QueryRowContext(ctx, s.claimSQL, key, token, s.nowMS(), ms(lease)).Scan(&got)
	if err == nil {
		return stripewebhook.Claim{Status: stripewebhook.Claimed, Token: got}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return stripewebhook.Claim{}, fmt.Errorf("sqlitestore: claim: %w", err)
	}
	var done bool
	switch err := s.db.QueryRowContext(ctx, s.doneSQL, key).Scan(&done); {
	case errors.Is(err, sql.ErrNoRows): // released meanwhile: the next try claims it
	case err != nil:
		return stripewebhook.Claim{}, fmt.Errorf("sqlitestore: claim: %w", err)
	case done:
		return stripewebhook.Claim{Status: stripewebhook.Done}, nil
	}
	return stripewebhook.Claim{Status: stripewebhook.InProgress}, nil
}

// write runs one of the statements that return a row when they acted on
// the caller's claim, and ErrClaimLost when they did not.
func (s *Store) write(ctx context.Context, op, query, key, token string, d time.Duration) error {
	var one int
	err := s.db.QueryRowContext(ctx, query, key, token, s.nowMS(), ms(d)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return stripewebhook.ErrClaimLost
	case err != nil:
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	return nil
}

// Complete implements stripewebhook.Store.
func (s *Store) Complete(ctx context.Context, key, token string, retention time.Duration) error {
	return s.write(ctx, "complete", s.completeSQL, key, token, retention)
}

// Extend implements stripewebhook.Store.
func (s *Store) Extend(ctx context.Context, key, token string, lease time.Duration) error {
	return s.write(ctx, "extend", s.extendSQL, key, token, lease)
}

// Release implements stripewebhook.Store.
func (s *Store) Release(ctx context.Context, key, token string) error {
	if _, err := s.db.ExecContext(ctx, s.releaseSQL, key, token); err != nil {
		return fmt.Errorf("sqlitestore: release: %w", err)
	}
	return nil
}

// LastApplied implements stripewebhook.StateStore.
func (s *Store) LastApplied(ctx context.Context, key string) (stripewebhook.Mark, error) {
	var m stripewebhook.Mark
	err := s.db.QueryRowContext(ctx, s.lastAppliedSQL, key, s.nowMS()).Scan(&m.Created, &m.EventID)
	if errors.Is(err, sql.ErrNoRows) {
		return stripewebhook.Mark{}, nil
	}
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("sqlitestore: last applied: %w", err)
	}
	return m, nil
}

// Advance implements stripewebhook.StateStore.
func (s *Store) Advance(ctx context.Context, key string, m stripewebhook.Mark, keep time.Duration) (stripewebhook.Mark, error) {
	var got stripewebhook.Mark
	err := s.db.QueryRowContext(ctx, s.advanceSQL, key, m.Created, m.EventID, s.nowMS(), ms(keep)).Scan(&got.Created, &got.EventID)
	if errors.Is(err, sql.ErrNoRows) { // a later mark is kept
		return s.LastApplied(ctx, key)
	}
	if err != nil {
		return stripewebhook.Mark{}, fmt.Errorf("sqlitestore: advance: %w", err)
	}
	return got, nil
}

// Cleanup deletes the rows whose lease, retention or keep has ended and
// returns how many.
func (s *Store) Cleanup(ctx context.Context) (int64, error) {
	now := s.nowMS()
	var n int64
	for _, q := range []string{s.cleanupClaims, s.cleanupMarks} {
		res, err := s.db.ExecContext(ctx, q, now)
		if err != nil {
			return n, fmt.Errorf("sqlitestore: cleanup: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}
