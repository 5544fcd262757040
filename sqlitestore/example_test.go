package sqlitestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/sqlitestore"
)

// A store in a SQLite file: what ran is remembered across restarts. Open
// the database the queue uses (rivqueue.NewSQLite) to keep both in one
// file.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "sqlitestore")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store, err := sqlitestore.New(db)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	c, _ := store.Claim(ctx, "evt_1", stripewebhook.DefaultLease)
	fmt.Println(c.Status)
	_ = store.Complete(ctx, "evt_1", c.Token, stripewebhook.DefaultRetention)
	c, _ = store.Claim(ctx, "evt_1", stripewebhook.DefaultLease)
	fmt.Println(c.Status)
	// Output:
	// claimed
	// done
}
