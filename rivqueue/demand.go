package rivqueue

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river/riverdriver"
)

// demand is whether this process takes jobs: River's producer fetches for
// its free slots whether or not a Receive here will take what it fetches,
// so that a process whose Worker has stopped, hangs, or has every slot
// busy would keep fetching jobs, hold each for handOff and hand it back,
// and, polling in step with the other processes (clients started together
// poll together), win each job back round after round while another
// process waits for it: hand-backs took 15-41 s. Gated by demand, River
// fetches only while a Receive waits here or one did within handOff; a
// process that takes nothing queries nothing, and what it hands back is
// the others'.
type demand struct {
	waiting atomic.Int64 // the Receives waiting now
	last    atomic.Int64 // when one last stopped waiting, in Unix nanoseconds
}

// wait counts a Receive waiting, until done. (Two methods rather than a
// returned func: a closure per Receive would be an allocation per event.)
func (d *demand) wait() { d.waiting.Add(1) }

// done ends the wait of a Receive.
func (d *demand) done() {
	d.last.Store(time.Now().UnixNano())
	d.waiting.Add(-1)
}

// wanted reports whether River should fetch for this process now.
func (d *demand) wanted() bool {
	return d.waiting.Load() > 0 || time.Now().UnixNano()-d.last.Load() < int64(handOff)
}

// gatedDriver is River's driver with its fetches gated by demand; every
// other call goes to the driver as it is.
type gatedDriver[TTx any] struct {
	riverdriver.Driver[TTx]
	demand *demand
}

func (g gatedDriver[TTx]) GetExecutor() riverdriver.Executor {
	return gatedExecutor{g.Driver.GetExecutor(), g.demand}
}

type gatedExecutor struct {
	riverdriver.Executor
	demand *demand
}

// JobGetAvailable locks nothing, and queries nothing, while this process
// takes nothing.
func (e gatedExecutor) JobGetAvailable(ctx context.Context, params *riverdriver.JobGetAvailableParams) (*riverdriver.JobGetAvailableResult, error) {
	if !e.demand.wanted() {
		return &riverdriver.JobGetAvailableResult{}, nil
	}
	return e.Executor.JobGetAvailable(ctx, params)
}
