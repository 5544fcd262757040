package stripewebhook

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// schedule is how a Worker's Run gives its events to its slots so that no
// slot sits waiting while events are ready, and an event that waits spends
// none of its attempts:
//
//   - Events are received while fewer than [handPerSlot] per slot are held
//     unsettled; each one held has its visibility extended (renewals), so
//     that the queue does not give it to another worker while it waits or
//     runs, however long that takes.
//   - Events about one object (the Message's Key) that this process holds
//     form a line, in the order received: the first owns the key, the
//     others wait behind it without a slot, and the slot that ran one runs
//     the next.
//   - An owner whose claim is held elsewhere (a duplicate running on
//     another replica, or a crashed one's claim until its lease ends) or
//     whose object's lock is (another replica runs an event about it) is
//     parked: it holds nothing in the store and no slot, and is tried again
//     with backoff, from parkFirst to parkMax.
//   - When Run's context is done, what has not started is handed back to
//     the queue (Delivery.Return), with no attempt spent.
type schedule struct {
	w           *Worker
	ctx, runCtx context.Context // Run's, and the callbacks'
	slots       chan struct{}   // a token per event running
	hand        chan struct{}   // a token per event received and not settled
	running     sync.WaitGroup  // the runs poll started

	mu     sync.Mutex
	lines  map[string][]*job // key → the events behind the one that owns it
	parked []*job            // owners waiting for what is held elsewhere
}

// job is an event a Worker holds.
type job struct {
	d    Delivery
	e    *Event
	key  string
	wait time.Duration // the last backoff while parked
	due  time.Time
}

// handPerSlot bounds how many events a Worker holds per slot (running or
// waiting): enough for a burst about one object not to stop the others.
const handPerSlot = 32

// Backoff of a parked event.
const (
	parkFirst = 50 * time.Millisecond
	parkMax   = 2 * time.Second
)

func newSchedule(w *Worker, ctx, runCtx context.Context) *schedule {
	return &schedule{
		w: w, ctx: ctx, runCtx: runCtx,
		slots: make(chan struct{}, w.wc.concurrency),
		hand:  make(chan struct{}, w.wc.concurrency*handPerSlot),
		lines: make(map[string][]*job),
	}
}

// receive takes events from the queue and runs those that are ready,
// until ctx is done.
func (s *schedule) receive() {
	failures := 0
	for {
		select {
		case s.hand <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		if s.ctx.Err() != nil { // select picks either ready case at random
			<-s.hand
			return
		}
		d, err := s.w.q.Receive(s.ctx)
		if err != nil {
			<-s.hand
			if s.ctx.Err() != nil {
				return
			}
			failures++
			s.w.c.logger.LogAttrs(s.ctx, slog.LevelError, "stripewebhook: worker: receiving from the queue failed; retrying",
				slog.Int("failures", failures), slog.Any("error", err))
			select {
			case <-s.ctx.Done():
			case <-time.After(s.w.backoffFor(failures)):
			}
			continue
		}
		failures = 0
		j := s.admit(d)
		if j == nil {
			continue
		}
		if s.ctx.Err() != nil { // received as the Worker stops: handed back, not run
			s.park(j)
			return
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			s.park(j) // handed back by handBack
			return
		}
		s.chain(j)
		<-s.slots
	}
}

// admit holds d and returns its job when it is to run now, or nil when it
// waits in its object's line (or was settled: a payload that does not
// parse goes to the dead letter).
func (s *schedule) admit(d Delivery) *job {
	if s.w.beat != nil {
		s.w.beat.hold(d, struct{}{})
	}
	m := d.Message()
	e, err := parseBus(m.Bus, m.Payload)
	if err != nil {
		s.w.settle(s.ctx, d, s.w.deadLetter(context.WithoutCancel(s.ctx), d, "invalid payload: "+err.Error()))
		s.release(d)
		return nil
	}
	e.Secret = m.Secret
	j := &job{d: d, e: e, key: m.Key}
	s.mu.Lock()
	defer s.mu.Unlock()
	if line, busy := s.lines[j.key]; busy {
		s.lines[j.key] = append(line, j)
		return nil
	}
	s.lines[j.key] = nil
	return j
}

// chain runs j, then the events behind it in its object's line, in the
// slot its caller holds, until one must wait or the line is empty.
func (s *schedule) chain(j *job) {
	for j != nil {
		if !s.w.step(s.runCtx, j) {
			s.park(j)
			return
		}
		s.release(j.d)
		j = s.next(j.key)
	}
}

// next returns the event that now owns key, or nil when none waits (the
// key is free) or the Worker is stopping (what waits is handed back).
func (s *schedule) next(key string) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := s.lines[key]
	if len(line) == 0 {
		delete(s.lines, key)
		return nil
	}
	if s.ctx.Err() != nil {
		return nil
	}
	s.lines[key] = line[1:]
	return line[0]
}

// release forgets a settled delivery.
func (s *schedule) release(d Delivery) {
	if s.w.beat != nil {
		s.w.beat.drop(d)
	}
	<-s.hand
}

// park sets j aside until its next try.
func (s *schedule) park(j *job) {
	if j.wait == 0 {
		s.w.c.logger.LogAttrs(s.ctx, slog.LevelDebug, "stripewebhook: worker: event waits for its claim or its object's lock, held elsewhere",
			slog.String("event_id", j.e.ID), slog.String("key", j.key))
	}
	j.wait = min(max(2*j.wait, parkFirst), parkMax)
	j.due = time.Now().Add(j.wait/2 + rand.N(j.wait/2+1))
	s.mu.Lock()
	s.parked = append(s.parked, j)
	s.mu.Unlock()
}

// poll tries the parked events again when due, each in a slot, until ctx
// is done.
func (s *schedule) poll() {
	t := time.NewTicker(parkFirst / 2)
	defer t.Stop()
	var due []*job
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		due = due[:0]
		s.mu.Lock()
		kept := s.parked[:0]
		for _, j := range s.parked {
			if now.Before(j.due) {
				kept = append(kept, j)
			} else {
				due = append(due, j)
			}
		}
		clear(s.parked[len(kept):])
		s.parked = kept
		s.mu.Unlock()
		for _, j := range due {
			select {
			case s.slots <- struct{}{}:
			case <-s.ctx.Done():
				s.mu.Lock()
				s.parked = append(s.parked, j)
				s.mu.Unlock()
				continue
			}
			s.running.Go(func() {
				s.chain(j)
				<-s.slots
			})
		}
	}
}

// handBack returns to the queue, with no attempt spent, the events held
// and not started: the parked ones and those waiting in lines.
func (s *schedule) handBack() {
	s.mu.Lock()
	var back []*job
	back = append(back, s.parked...)
	for _, line := range s.lines {
		back = append(back, line...)
	}
	s.parked, s.lines = nil, map[string][]*job{}
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.ctx)
	for _, j := range back {
		if err := j.d.Return(ctx); err != nil {
			s.w.c.logger.LogAttrs(ctx, slog.LevelWarn, "stripewebhook: worker: handing an event back to the queue failed; it comes back after the visibility timeout",
				slog.String("event_id", j.e.ID), slog.Any("error", err))
		}
		s.release(j.d)
	}
}
