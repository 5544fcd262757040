// Package queueurl opens the durable queue that a URL names, for the
// example server's -queue flag and the command line's dead-letter commands,
// so that both read the same URLs. It is its own module: it pulls every
// engine's client, which the core must not.
package queueurl

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, for sqlite://

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/amqpqueue"
	"github.com/stripewebhook/stripewebhook/jsqueue"
	"github.com/stripewebhook/stripewebhook/rivqueue"
)

// Syntax is what Open accepts, for error and usage messages.
const Syntax = "nats://host:port[?queue=NAME] (JetStream), postgres://…[&queue=NAME] (River), amqp://user:password@host:port/[?queue=NAME] (RabbitMQ) or sqlite://PATH[?queue=NAME] (River on a local file)"

// DefaultPoolConns sizes a PostgreSQL pool unless the URL says
// pool_max_conns: pgx's default (4 connections on a small machine) queues
// concurrent deliveries behind each other.
const DefaultPoolConns = 16

// PoolConfig parses a postgres:// URL into a pgx pool configuration of
// DefaultPoolConns connections unless the URL says pool_max_conns. pgx
// hides the password in its parse errors.
func PoolConfig(raw string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(raw); err != nil || !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = DefaultPoolConns
	}
	return cfg, nil
}

// Open opens the queue that raw names (see Syntax), creating River's tables
// or JetStream's streams, and a SQLite file, if they are missing. The names
// default to the engines' own (jsqueue.DefaultName, rivqueue.DefaultName, amqpqueue.DefaultName).
// The returned function closes the queue and its connection.
func Open(ctx context.Context, raw string) (stripewebhook.Queue, func(), error) {
	return open(ctx, raw, true)
}

// OpenExisting is Open for a queue that must already be there: a SQLite
// file that does not exist is an error, not a new empty queue (a mistyped
// path would otherwise list no dead letters).
func OpenExisting(ctx context.Context, raw string) (stripewebhook.Queue, func(), error) {
	return open(ctx, raw, false)
}

func open(ctx context.Context, raw string, create bool) (stripewebhook.Queue, func(), error) {
	u, err := url.Parse(raw)
	if err != nil { // not wrapped: url.Error shows the whole URL, password included
		return nil, nil, fmt.Errorf("%q is not a URL", redact(raw))
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return openRiver(ctx, u)
	case "sqlite":
		return openSQLite(ctx, u, create)
	case "nats":
		return openJetStream(ctx, u)
	case "amqp", "amqps":
		return openRabbitMQ(ctx, u)
	}
	return nil, nil, fmt.Errorf("%q is not %s", redact(raw), Syntax)
}

// takeParam removes the query parameter name from u and returns its value.
func takeParam(u *url.URL, name string) string {
	q := u.Query()
	v := q.Get(name)
	q.Del(name)
	u.RawQuery = q.Encode()
	return v
}

func openRiver(ctx context.Context, u *url.URL) (stripewebhook.Queue, func(), error) {
	opts := riverOptions(u)
	cfg, err := PoolConfig(u.String())
	if err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	q, err := rivqueue.New(pool, opts...)
	return migrated(ctx, q, err, pool.Close, "PostgreSQL at "+u.Redacted())
}

// riverOptions takes River's options out of u's query.
func riverOptions(u *url.URL) []rivqueue.Option {
	if name := takeParam(u, "queue"); name != "" {
		return []rivqueue.Option{rivqueue.WithName(name)}
	}
	return nil
}

// migrated finishes opening a River queue: its tables, or the connection
// closed and the error said where.
func migrated[TTx any](ctx context.Context, q *rivqueue.Queue[TTx], err error, closeConn func(), where string) (stripewebhook.Queue, func(), error) {
	if err == nil {
		err = q.Migrate(ctx)
	}
	if err != nil {
		closeConn()
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	return q, func() { q.Close(context.Background()); closeConn() }, nil
}

func openSQLite(ctx context.Context, u *url.URL, create bool) (stripewebhook.Queue, func(), error) {
	opts := riverOptions(u)
	db, path, err := sqliteDB(u, create)
	if err != nil {
		return nil, nil, err
	}
	q, err := rivqueue.NewSQLite(db, opts...)
	return migrated(ctx, q, err, func() { db.Close() }, "SQLite file "+path)
}

// SQLite opens the database file that a sqlite:// URL names (its query,
// such as ?queue=, is the queue's and ignored here) the way Open does:
// created if missing, readable by its owner only, in WAL mode with a busy
// timeout. It is how the example keeps its dedup store (sqlitestore) in
// its queue's file. The caller closes db.
func SQLite(raw string) (db *sql.DB, path string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sqlite" {
		return nil, "", fmt.Errorf("not a sqlite:// URL")
	}
	return sqliteDB(u, true)
}

func sqliteDB(u *url.URL, create bool) (*sql.DB, string, error) {
	path := u.Opaque // sqlite:queue.db
	if path == "" {
		path = u.Host + u.Path // sqlite://queue.db, sqlite:///var/lib/queue.db
	}
	if path == "" {
		return nil, "", fmt.Errorf("sqlite:// needs a file path")
	}
	if _, err := os.Stat(path); err != nil && !create {
		return nil, "", fmt.Errorf("SQLite file %s: %w", path, err)
	}
	// The file keeps every payload (customers' names, emails): readable by
	// its owner only. SQLite gives the -wal and -shm files its mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("SQLite file %s: %w", path, err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, "", err
	}
	return db, path, nil
}

func openJetStream(ctx context.Context, u *url.URL) (stripewebhook.Queue, func(), error) {
	var opts []jsqueue.Option
	if name := takeParam(u, "queue"); name != "" {
		opts = append(opts, jsqueue.WithName(name))
	}
	nc, err := nats.Connect(u.String(), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("NATS at %s: %w", u.Redacted(), err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var q *jsqueue.Queue
		if q, err = jsqueue.New(ctx, js, opts...); err == nil {
			return q, nc.Close, nil
		}
	}
	nc.Close()
	return nil, nil, fmt.Errorf("NATS at %s: %w", u.Redacted(), err)
}

func openRabbitMQ(ctx context.Context, u *url.URL) (stripewebhook.Queue, func(), error) {
	var opts []amqpqueue.Option
	if name := takeParam(u, "queue"); name != "" {
		opts = append(opts, amqpqueue.WithName(name))
	}
	q, err := amqpqueue.New(ctx, amqpqueue.Dial(u.String()), opts...)
	if err != nil {
		return nil, nil, err // amqpqueue hides the password
	}
	return q, func() { q.Close(context.Background()) }, nil
}

// redact hides a password in a URL that could not be parsed as one.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
			return raw[:scheme+3] + "…" + raw[at:]
		}
		return "…" + raw[at:]
	}
	return raw
}
