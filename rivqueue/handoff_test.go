package rivqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// A delivery settled just before River cancels the work (StopAndCancel on
// shutdown, or the job timeout) returns what it was settled with: the
// cancellation must not turn a dead letter or an ack into a failed attempt.
func TestHandOffPrefersTheSettlement(t *testing.T) {
	q := &Queue[pgx.Tx]{deliveries: make(chan *delivery)}
	deadLetter := river.JobCancel(errors.New("the ledger is down"))
	delivered := 0
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // River has cancelled the work…
		d := &delivery{settled: make(chan error, 1)}
		d.settled <- deadLetter // …right after the worker settled it
		taken, returned := make(chan bool), make(chan struct{})
		go func() { // a Receive waiting
			select {
			case <-q.deliveries:
				taken <- true
			case <-returned:
				taken <- false
			}
		}()
		time.Sleep(100 * time.Microsecond) // let it wait on the channel
		err := q.handOff(ctx, d)
		close(returned)
		if !<-taken {
			continue // not handed over: snoozed, no attempt spent
		}
		delivered++
		if err != deadLetter {
			t.Fatalf("handed over and settled, then cancelled: %v, want the settlement", err)
		}
	}
	if delivered == 0 {
		t.Fatal("never handed over")
	}
}
