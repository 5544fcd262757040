// Package rivqueue is a stripewebhook.Queue on PostgreSQL through River
// (github.com/riverqueue/river, pgx v5 driver), for the asynchronous mode:
// the insert of a River job is the durable acknowledgement, River's retries
// carry the worker's backoff, and cancelled jobs are the dead letter, which
// River's UI shows for free.
//
//	q, err := rivqueue.New(pool)
//	err = q.Migrate(ctx) // River's tables, once (safe when replicas start together)
//	h, err := stripewebhook.NewHandler(d, secrets, stripewebhook.WithQueue(q), stripewebhook.WithDedup(store))
//	w, err := stripewebhook.NewWorker(h) // the handler's queue and store
//	go w.Run(ctx)
//	defer q.Close(ctx)
//
// Jobs are unique by event id while pending or running; EnqueueTx queues
// an event in the caller's transaction.
package rivqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/stripewebhook/stripewebhook"
	"github.com/stripewebhook/stripewebhook/groupcommit"
)

// Defaults.
const (
	DefaultName = "stripewebhook" // River's queue name
	// DefaultVisibilityTimeout is short because the Worker extends the
	// visibility of every event it holds each third of it: a killed
	// worker's events run again within it plus River's rescuer interval
	// (30 s), under a minute, while a callback runs for as long as it
	// needs.
	DefaultVisibilityTimeout = 25 * time.Second
	// DefaultFetchers is how many jobs River fetches ahead in a process:
	// as many as a Worker of the default concurrency holds.
	DefaultFetchers = 128
	// maxAttempts is River's bound; the stripewebhook Worker dead-letters
	// before it.
	maxAttempts = 1000
)

// Args is the River job of one event.
type Args struct {
	EventID string `json:"event_id" river:"unique"`
	Key     string `json:"key"`
	Secret  string `json:"secret"`
	Payload []byte `json:"payload"`       // base64 in River's jsonb column: byte for byte, as Stripe sent it
	Bus     string `json:"bus,omitempty"` // the cloud bus whose envelope Payload is, if any
}

// message is the Message a job carries.
func (a Args) message() stripewebhook.Message {
	return stripewebhook.Message{ID: a.EventID, Key: a.Key, Secret: a.Secret, Payload: a.Payload, Bus: stripewebhook.Bus(a.Bus)}
}

// Kind implements river.JobArgs.
func (Args) Kind() string { return "stripewebhook_event" }

// Queue is a stripewebhook.Queue on River, with River's driver for TTx
// (pgx.Tx for PostgreSQL, *sql.Tx for SQLite). It is safe for concurrent
// use.
type Queue[TTx any] struct {
	client     *river.Client[TTx]
	driver     riverdriver.Driver[TTx]
	migrate    func(context.Context) error
	extendSQL  string // marks a running job as alive: River rescues the jobs it has not heard of for the visibility timeout
	queue      string
	visibility time.Duration

	startOnce  sync.Once
	startErr   error
	deliveries chan *delivery
	delays     sync.Map // job id → the delay the worker asked for its retry

	demand   demand                     // River fetches only while a Receive waits here
	inserts  *groupcommit.Batcher[Args] // concurrent Enqueues share a transaction
	closed   atomic.Bool
	stopping chan struct{} // closed by Close: the jobs handed off go back
	stopOnce sync.Once
}

// maxBatch bounds how many concurrent Enqueues one transaction inserts.
const maxBatch = 128

var _ stripewebhook.Queue = (*Queue[pgx.Tx])(nil)

// Option configures a Queue.
type Option func(*config)

type config struct {
	queue       string
	rescueAfter time.Duration
	workers     int
	completed   time.Duration
}

// WithName replaces DefaultName (River's queue name), to share a database
// between applications.
func WithName(name string) Option { return func(c *config) { c.queue = name } }

// WithVisibilityTimeout sets how long a job may stay running, unextended,
// before River rescues it (the visibility timeout: a worker that died has
// its events run again after it, plus River's rescuer interval of 30 s).
// Default DefaultVisibilityTimeout; the Worker extends the events it holds
// each third of it.
func WithVisibilityTimeout(d time.Duration) Option { return func(c *config) { c.rescueAfter = d } }

// DefaultCompletedRetention is how long a completed event's job, and its
// payload, stay in the database: River's default.
const DefaultCompletedRetention = 24 * time.Hour

// WithCompletedRetention sets how long the job of an event whose callbacks
// succeeded is kept before River deletes it, payload included (default
// [DefaultCompletedRetention]): shorten it to keep customers' data for
// less. The dedup store, not this, keeps an event from running twice.
// Dead letters are kept until they are replayed.
func WithCompletedRetention(d time.Duration) Option { return func(c *config) { c.completed = d } }

// WithFetchers sets how many jobs River fetches ahead for the Workers of
// this process (default DefaultFetchers): at least what its Workers hold
// (32 per unit of concurrency), or the events waiting behind a busy
// object keep River from fetching the others'.
func WithFetchers(n int) Option { return func(c *config) { c.workers = n } }

// New returns a Queue on PostgreSQL through pool. The caller owns pool;
// Close stops River's client.
func New(pool *pgxpool.Pool, opts ...Option) (*Queue[pgx.Tx], error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: rivqueue.New: nil pool", stripewebhook.ErrInvalidOption)
	}
	return newQueue(riverpgxv5.New(pool), func(ctx context.Context) error { return migratePostgres(ctx, pool) },
		`UPDATE river_job SET attempted_at = now() WHERE id = $1 AND state = 'running'`, opts)
}

func newQueue[TTx any](driver riverdriver.Driver[TTx], migrate func(context.Context) error, extendSQL string, opts []Option) (*Queue[TTx], error) {
	c := config{queue: DefaultName, rescueAfter: DefaultVisibilityTimeout, workers: DefaultFetchers, completed: DefaultCompletedRetention}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.queue == "":
		return nil, fmt.Errorf("%w: rivqueue.WithName: empty name", stripewebhook.ErrInvalidOption)
	case c.rescueAfter <= 0:
		return nil, fmt.Errorf("%w: rivqueue.WithVisibilityTimeout(%v): must be positive", stripewebhook.ErrInvalidOption, c.rescueAfter)
	case c.workers <= 0:
		return nil, fmt.Errorf("%w: rivqueue.WithFetchers(%d): must be positive", stripewebhook.ErrInvalidOption, c.workers)
	case c.completed <= 0:
		return nil, fmt.Errorf("%w: rivqueue.WithCompletedRetention(%v): must be positive", stripewebhook.ErrInvalidOption, c.completed)
	}
	q := &Queue[TTx]{queue: c.queue, driver: driver, migrate: migrate, extendSQL: extendSQL, visibility: c.rescueAfter, deliveries: make(chan *delivery), stopping: make(chan struct{})}
	q.inserts = groupcommit.New(maxBatch, q.insertBatch)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &bridge{handOff: q.handOff}); err != nil {
		return nil, fmt.Errorf("rivqueue: %w", err)
	}
	client, err := river.NewClient[TTx](gatedDriver[TTx]{driver, &q.demand}, &river.Config{
		Queues:      map[string]river.QueueConfig{c.queue: {MaxWorkers: c.workers}},
		Workers:     workers,
		MaxAttempts: maxAttempts,
		// River fetches at most once per cooldown (100 ms by default),
		// which bounds a process to its fetchers' worth of jobs per
		// cooldown whatever the callbacks cost.
		FetchCooldown: fetchCooldown,
		// A job handed back, returned, or retried after a short delay is
		// found by a poll: River's 1 s would be the hand-off's latency.
		// A process that takes nothing does not query (demand).
		FetchPollInterval: fetchPoll,
		// The rescuer makes a running job retryable (its process died)
		// once the visibility timeout has passed since attempted_at, which
		// Extend moves on; it ignores jobs without a timeout. The timeout
		// also puts a deadline on Work's context, counted from the fetch,
		// which handOff ignores: the Worker holds a job for as long as its
		// callbacks run.
		JobTimeout:           c.rescueAfter,
		RescueStuckJobsAfter: c.rescueAfter,
		RetryPolicy:          retryPolicy{&q.delays},
		// Dead letters are cancelled jobs: kept until replayed, where River
		// would delete them after a day.
		CancelledJobRetentionPeriod: -1,
		CompletedJobRetentionPeriod: c.completed,
		Logger:                      slogDiscard(),
	})
	if err != nil {
		return nil, fmt.Errorf("rivqueue: %w", err)
	}
	q.client = client
	return q, nil
}

// fetchCooldown is the shortest wait between two fetches of River's, and
// fetchPoll the longest while a Receive waits.
const (
	fetchCooldown = 5 * time.Millisecond
	fetchPoll     = 250 * time.Millisecond
)

// VisibilityTimeout is how long a job may stay running, unextended, before
// River's rescuer takes it as lost (plus the rescuer's interval).
func (q *Queue[TTx]) VisibilityTimeout() time.Duration { return q.visibility }

// Migrate runs River's migrations up (on PostgreSQL under an advisory lock,
// so that replicas starting together do not race).
func (q *Queue[TTx]) Migrate(ctx context.Context) error { return q.migrate(ctx) }

func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rivqueue: migrate: %w", err)
	}
	defer conn.Release()
	const lock = `SELECT pg_advisory_lock(22343, hashtext('rivqueue'))`
	if _, err := conn.Exec(ctx, lock); err != nil {
		return fmt.Errorf("rivqueue: migrate: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(22343, hashtext('rivqueue'))`)
	return migrateUp(ctx, riverpgxv5.New(pool))
}

// migrateUp runs River's migrations up on driver's database.
func migrateUp[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(driver, nil)
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		return fmt.Errorf("rivqueue: migrate: %w", err)
	}
	return nil
}

func (q *Queue[TTx]) insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: q.queue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func args(m stripewebhook.Message) Args {
	return Args{EventID: m.ID, Key: m.Key, Secret: m.Secret, Payload: m.Payload, Bus: string(m.Bus)}
}

// Enqueue inserts the event's job; it returns nil once the insert has
// committed. Concurrent Enqueues share a transaction (a group commit: the
// ones that arrive while one commits go in the next), so that a burst
// costs one commit per batch rather than one per event.
func (q *Queue[TTx]) Enqueue(ctx context.Context, m stripewebhook.Message) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if err := q.inserts.Do(ctx, args(m)); err != nil { // on ctx's end the batch may still commit: Stripe's retry is then a duplicate
		return fmt.Errorf("rivqueue: insert %s: %w", m.ID, err)
	}
	return nil
}

// insertBatch inserts a batch of Enqueues in one transaction.
func (q *Queue[TTx]) insertBatch(batch []Args, errs []error) {
	// One row per event: Stripe's concurrent duplicates often share a
	// batch, and one statement cannot insert a unique key twice.
	params := make([]river.InsertManyParams, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, a := range batch {
		if !seen[a.EventID] {
			seen[a.EventID] = true
			params = append(params, river.InsertManyParams{Args: a, InsertOpts: q.insertOpts()})
		}
	}
	// The same order in every batch, on every replica: two batches
	// holding the same events cannot deadlock on their unique keys.
	sort.Slice(params, func(i, j int) bool {
		return params[i].Args.(Args).EventID < params[j].Args.(Args).EventID
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := q.client.InsertMany(ctx, params)
	if err != nil && ctx.Err() == nil { // a conflict with a concurrent batch: once more
		_, err = q.client.InsertMany(ctx, params)
	}
	for i := range errs {
		errs[i] = err
	}
}

// EnqueueTx inserts the event's job in the caller's transaction: it is
// queued if and only if the transaction commits.
func (q *Queue[TTx]) EnqueueTx(ctx context.Context, tx TTx, m stripewebhook.Message) error {
	if _, err := q.client.InsertTx(ctx, tx, args(m), q.insertOpts()); err != nil {
		return fmt.Errorf("rivqueue: insert %s: %w", m.ID, err)
	}
	return nil
}

// Receive waits for the next event. The first call starts River's client
// in this process.
func (q *Queue[TTx]) Receive(ctx context.Context) (stripewebhook.Delivery, error) {
	q.startOnce.Do(func() { q.startErr = q.client.Start(context.Background()) })
	if q.startErr != nil {
		return nil, fmt.Errorf("rivqueue: starting River: %w", q.startErr)
	}
	q.demand.wait()
	defer q.demand.done()
	select {
	case d := <-q.deliveries:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close refuses further Enqueues and stops River's client, if Receive
// started it: jobs in flight are cancelled and run again later.
func (q *Queue[TTx]) Close(ctx context.Context) error {
	q.closed.Store(true)
	q.stopOnce.Do(func() { close(q.stopping) })
	started := false
	q.startOnce.Do(func() {}) // no start after Close
	select {
	case <-q.client.Stopped():
	default:
		started = q.startErr == nil
	}
	if !started {
		return nil
	}
	return q.client.StopAndCancel(ctx)
}

// bridge is River's worker: it hands each job to Receive and returns what
// the delivery was settled with.
type bridge struct {
	river.WorkerDefaults[Args]
	handOff func(ctx context.Context, d *delivery) error
}

// handOff is how long a fetched job waits for a Receive before it goes
// back to the queue (snoozed for no time, no attempt spent), so that River
// does not hold jobs that no Worker in this process takes (all busy, or
// stopped); by then this process has stopped fetching (demand), and the job
// is the next waiting process's.
const handOff = 250 * time.Millisecond

func (b *bridge) Work(ctx context.Context, job *river.Job[Args]) error {
	return b.handOff(ctx, &delivery{job: job.JobRow, args: job.Args, settled: make(chan error, 1)})
}

// handOff gives d to a Receive and waits until it is settled.
func (q *Queue[TTx]) handOff(ctx context.Context, d *delivery) error {
	d.delays = &q.delays
	d.extend = q.extend
	t := time.NewTimer(handOff)
	defer t.Stop()
	select {
	case q.deliveries <- d:
	case <-t.C:
		return river.JobSnooze(0) // not taken: back to the queue, no attempt spent
	case <-ctx.Done():
		return river.JobSnooze(0)
	}
	// Work's deadline (the job timeout, from the fetch) is not the end of
	// a job the Worker extends: only River stopping is.
	done := ctx.Done()
	for {
		select {
		case err := <-d.settled:
			return err
		case <-done:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				done = nil
				continue
			}
		case <-q.stopping:
		}
		select {
		case err := <-d.settled: // settled just before: select picks either ready case at random
			return err
		default:
		}
		return fmt.Errorf("rivqueue: %s not settled: %w", d.args.EventID, context.Cause(ctx))
	}
}

type delivery struct {
	delays  *sync.Map
	extend  func(ctx context.Context, id int64) error
	job     *rivertype.JobRow
	args    Args
	settled chan error
	once    sync.Once
}

func (d *delivery) Message() stripewebhook.Message {
	return d.args.message()
}

func (d *delivery) Attempt() int { return d.job.Attempt }

func (d *delivery) EnqueuedAt() time.Time { return d.job.CreatedAt }

func (d *delivery) settle(err error) error {
	d.once.Do(func() { d.settled <- err })
	return nil
}

// Extend tells River's rescuer that the job is alive: its attempted_at,
// from which the rescuer counts the visibility timeout, is now.
func (d *delivery) Extend(ctx context.Context) error { return d.extend(ctx, d.job.ID) }

// extend marks the running job id as alive.
func (q *Queue[TTx]) extend(ctx context.Context, id int64) error {
	if err := q.driver.GetExecutor().Exec(ctx, q.extendSQL, id); err != nil {
		return fmt.Errorf("rivqueue: extend: %w", err)
	}
	return nil
}

// Return snoozes the job for no time: back in the queue at once, with no
// attempt spent (River's snooze does not count one).
func (d *delivery) Return(context.Context) error { return d.settle(river.JobSnooze(0)) }

// Ack completes the job.
func (d *delivery) Ack(context.Context) error { return d.settle(nil) }

// Retry fails the attempt; River runs the job again after delay.
func (d *delivery) Retry(_ context.Context, delay time.Duration) error {
	d.delays.Store(d.job.ID, delay)
	return d.settle(errRetry)
}

// DeadLetter cancels the job with the reason: River keeps it, cancelled.
func (d *delivery) DeadLetter(_ context.Context, reason string) error {
	return d.settle(river.JobCancel(errors.New(reason)))
}

var errRetry = errors.New("rivqueue: the worker asked for a retry")

// ErrClosed is returned by Enqueue once the Queue is closed.
var ErrClosed = errors.New("rivqueue: closed")

// retryPolicy schedules a retry after the delay the worker asked for.
type retryPolicy struct{ delays *sync.Map }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	if d, ok := p.delays.LoadAndDelete(job.ID); ok {
		return time.Now().Add(d.(time.Duration))
	}
	return (&river.DefaultClientRetryPolicy{}).NextRetry(job)
}

// DeadLetters lists the cancelled and discarded jobs of the queue, oldest
// first.
func (q *Queue[TTx]) DeadLetters(ctx context.Context) ([]stripewebhook.DeadLetter, error) {
	jobs, err := q.deadJobs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]stripewebhook.DeadLetter, 0, len(jobs))
	for _, j := range jobs {
		var a Args
		if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
			return nil, fmt.Errorf("rivqueue: job %d: %w", j.ID, err)
		}
		dl := stripewebhook.DeadLetter{Message: a.message(), Attempts: j.Attempt}
		if n := len(j.Errors); n > 0 {
			dl.Reason, dl.At = strings.TrimPrefix(j.Errors[n-1].Error, "JobCancelError: "), j.Errors[n-1].At
		}
		if j.FinalizedAt != nil {
			dl.At = *j.FinalizedAt
		}
		out = append(out, dl)
	}
	return out, nil
}

// deadPage is how many dead letters one query lists.
const deadPage = 1000

// deadJobs lists every cancelled and discarded job of the queue, a page at
// a time.
func (q *Queue[TTx]) deadJobs(ctx context.Context) ([]*rivertype.JobRow, error) {
	params := river.NewJobListParams().Kinds(Args{}.Kind()).Queues(q.queue).
		States(rivertype.JobStateCancelled, rivertype.JobStateDiscarded).First(deadPage)
	var jobs []*rivertype.JobRow
	for {
		res, err := q.client.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("rivqueue: dead letters: %w", err)
		}
		jobs = append(jobs, res.Jobs...)
		if len(res.Jobs) < deadPage {
			return jobs, nil
		}
		params = params.After(res.LastCursor)
	}
}

// Replay queues the dead letter of event id again as a new job, a fresh
// series of attempts (River's JobRetry would keep the count, leaving the
// replay a single attempt), and deletes the dead one.
func (q *Queue[TTx]) Replay(ctx context.Context, id string) error {
	jobs, err := q.deadJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		var a Args
		if json.Unmarshal(j.EncodedArgs, &a) != nil || a.EventID != id {
			continue
		}
		if _, err := q.client.Insert(ctx, a, q.insertOpts()); err != nil {
			return fmt.Errorf("rivqueue: replay %s: %w", id, err)
		}
		if _, err := q.client.JobDelete(ctx, j.ID); err != nil {
			return fmt.Errorf("rivqueue: replay %s: queued again, but its dead letter stays listed: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("rivqueue: replay %s: %w", id, stripewebhook.ErrNoDeadLetter)
}
