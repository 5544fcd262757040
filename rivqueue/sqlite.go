package rivqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// NewSQLite returns a Queue on the SQLite database db, through River's
// SQLite driver: the asynchronous mode on one machine with no server, an
// event being durable once its insert commits to the database file. Open db
// with a pure-Go driver (modernc.org/sqlite) in WAL mode with a busy
// timeout. The caller owns db; Close stops River's client.
func NewSQLite(db *sql.DB, opts ...Option) (*Queue[*sql.Tx], error) {
	if db == nil {
		return nil, errors.New("rivqueue: a database is required")
	}
	return newQueue(riversqlite.New(db), func(ctx context.Context) error {
		m, err := rivermigrate.New(riversqlite.New(db), nil)
		if err == nil {
			_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
		if err != nil {
			return fmt.Errorf("rivqueue: migrate: %w", err)
		}
		return nil
	}, opts)
}
