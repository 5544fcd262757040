package rivqueue

import (
	"context"
	"database/sql"
	"errors"

	"github.com/riverqueue/river/riverdriver/riversqlite"
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
	driver := riversqlite.New(db)
	return newQueue(driver, func(ctx context.Context) error { return migrateUp(ctx, driver) }, opts)
}
