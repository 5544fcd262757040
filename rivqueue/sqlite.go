package rivqueue

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stripewebhook/stripewebhook"
)

// NewSQLite returns a Queue on the SQLite database db, through River's
// SQLite driver: the asynchronous mode on one machine with no server, an
// event being durable once its insert commits to the database file. Open db
// with a pure-Go driver (modernc.org/sqlite) in WAL mode with a busy
// timeout. The caller owns db; Close stops River's client.
func NewSQLite(db *sql.DB, opts ...Option) (*Queue[*sql.Tx], error) {
	if db == nil {
		return nil, fmt.Errorf("%w: rivqueue.NewSQLite: nil database", stripewebhook.ErrInvalidOption)
	}
	driver := riversqlite.New(db)
	return newQueue(driver, func(ctx context.Context) error { return migrateUp(ctx, driver) },
		// River's SQLite driver keeps times as text, in this form.
		`UPDATE river_job SET attempted_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = ?1 AND state = 'running'`, opts)
}
