package rotation

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// maxJobs bounds the finished jobs kept in memory; older ones are read from their journals.
const maxJobs = 100

// ErrStopping is why jobs are cancelled when the process stops.
var ErrStopping = errors.New("the exporter is stopping")

// Jobs runs jobs in the background and finds them by ID, and stops them gracefully.
type Jobs struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	byID  map[string]*Job
	order []string
}

// NewJobs makes an empty set of jobs.
func NewJobs() *Jobs {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Jobs{ctx: ctx, cancel: cancel, byID: map[string]*Job{}}
}

// Start runs a job in the background.
func (js *Jobs) Start(job *Job) {
	js.mu.Lock()
	id := job.Report().ID
	js.byID[id] = job
	js.order = append(js.order, id)
	for len(js.order) > maxJobs && js.byID[js.order[0]].Report().State != Running {
		delete(js.byID, js.order[0])
		js.order = js.order[1:]
	}
	js.mu.Unlock()
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		job.Run(js.ctx, nil)
		go js.catchUp(job)
	}()
}

// catchUp writes the journal of a job that ended while the backup directory did not take it,
// until it does or the process stops.
func (js *Jobs) catchUp(job *Job) {
	for job.journalBehind() {
		select {
		case <-js.ctx.Done():
			return
		case <-time.After(journalRetry):
		}
		if err := job.save(); err == nil {
			job.rot.logger.Info("journal written at last", "job", job.Report().ID)
		}
	}
}

// journalRetry is how often catchUp tries again.
const journalRetry = 5 * time.Second

// Get finds a job of this process.
func (js *Jobs) Get(id string) (*Job, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	job, ok := js.byID[id]
	return job, ok
}

// Last is the newest job of this process for the container with the trigger, of one of the
// states when any are given.
func (js *Jobs) Last(container string, trigger Trigger, states ...State) (Report, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	for i := len(js.order) - 1; i >= 0; i-- {
		rep := js.byID[js.order[i]].Report()
		if rep.Container == container && rep.Trigger == trigger && (len(states) == 0 || slices.Contains(states, rep.State)) {
			return rep, true
		}
	}
	return Report{}, false
}

// All lists the jobs of this process.
func (js *Jobs) All() []*Job {
	js.mu.Lock()
	defer js.mu.Unlock()
	out := make([]*Job, 0, len(js.order))
	for _, id := range js.order {
		out = append(out, js.byID[id])
	}
	return out
}

// Shutdown lets running jobs finish within grace: what still runs when the time to roll back
// is all that is left is cancelled, which rolls it back. It tells whether every job ended; one
// that did not is finished from its journal by the next process.
func (js *Jobs) Shutdown(grace time.Duration) bool {
	done := make(chan struct{})
	go func() {
		js.wg.Wait()
		close(done)
	}()
	return FinishWithin(done, func() { js.cancel(ErrStopping) }, grace)
}

// FinishWithin waits for done for the grace period, calling cancel when the part of it a
// rollback needs is all that is left.
func FinishWithin(done <-chan struct{}, cancel func(), grace time.Duration) bool {
	rollback := min(grace/2, 10*time.Second)
	select {
	case <-done:
		return true
	case <-time.After(grace - rollback):
	}
	cancel()
	select {
	case <-done:
		return true
	case <-time.After(rollback):
		return false
	}
}
