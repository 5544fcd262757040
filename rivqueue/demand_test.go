package rivqueue_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/rivqueue"
	"github.com/stripewebhook/stripewebhook/webhooktest"
)

// A process whose River client runs but where no Receive waits (its
// Worker stopped, hung, or busy) fetches nothing: the job stays available
// for the processes that wait, rather than being fetched, held and handed
// back round after round. Once a Receive waits here again, it gets it.
func TestIdleProcessFetchesNothing(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "queue.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := rivqueue.NewSQLite(db, rivqueue.WithName("idle"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := q.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	defer q.Close(ctx)
	// A Receive starts River's client, then stops waiting.
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := q.Receive(rctx); err == nil {
		t.Fatal("received from an empty queue")
	}
	cancel()
	time.Sleep(300 * time.Millisecond) // past the hand-off window

	p := webhooktest.Fixture(t, "invoice.paid")
	if err := q.Enqueue(ctx, stripewebhook.Message{ID: "evt_idle", Key: "in_idle", Payload: p}); err != nil {
		t.Fatal(err)
	}
	state := func() (s string, attempt int) {
		t.Helper()
		if err := db.QueryRow(`SELECT state, attempt FROM river_job WHERE queue = 'idle'`).Scan(&s, &attempt); err != nil {
			t.Fatal(err)
		}
		return s, attempt
	}
	// River polls every 250 ms and is told of the insert at once: 1.5 s
	// is several chances to fetch it.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s, attempt := state(); s != "available" || attempt != 0 {
			t.Fatalf("fetched with no Receive waiting: state %s, attempt %d", s, attempt)
		}
	}

	rctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	d, err := q.Receive(rctx)
	if err != nil {
		t.Fatalf("a Receive waiting again got nothing: %v", err)
	}
	if d.Message().ID != "evt_idle" || d.Attempt() != 1 {
		t.Fatalf("received %s attempt %d, want evt_idle attempt 1", d.Message().ID, d.Attempt())
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a Receive waiting again got the job after %v, want within River's 250 ms poll", took)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}
