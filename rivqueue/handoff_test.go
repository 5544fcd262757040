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
	q := &Queue[pgx.Tx]{deliveries: make(chan *delivery), stopping: make(chan struct{})}
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

// Work's deadline (River's job timeout, counted from the fetch) does not
// end a job the Worker holds and extends: handOff waits for its settlement
// past it, and only Close ends the wait.
func TestHandOffOutlivesTheJobTimeout(t *testing.T) {
	q := &Queue[pgx.Tx]{deliveries: make(chan *delivery, 1), stopping: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d := &delivery{settled: make(chan error, 1)}
	go func() {
		got := <-q.deliveries
		time.Sleep(100 * time.Millisecond) // a callback running past the timeout
		got.Ack(context.Background())
	}()
	if err := q.handOff(ctx, d); err != nil {
		t.Fatalf("settled after the job timeout: %v, want the ack", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d = &delivery{settled: make(chan error, 1)}
	go func() { <-q.deliveries; time.Sleep(50 * time.Millisecond); close(q.stopping) }()
	if err := q.handOff(ctx, d); err == nil {
		t.Fatal("unsettled when the queue closed: nil, want an error (the job goes back)")
	}
}
