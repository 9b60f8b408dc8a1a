// Package rotation rotates the k3s certificates of a Rancher container safely: verified backup
// first, keys never touched, works on a crash-looping container, verified after. It also
// restores a backup. Every job is journaled, so a process that dies mid-job leaves nothing
// that the next one does not finish, and runs alone on its container, whatever the process.
// The HTTP API and the CLI both run the same jobs.
package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Config bounds and places the jobs.
type Config struct {
	BackupDir   string
	SettleTime  time.Duration // how long a started container must run cleanly
	StopTimeout time.Duration // docker stop grace period
	Timeout     time.Duration // a whole job
	BackupKeep  int           // verified backups kept per container after a success
	Owner       string        // this process, as journals and locks name it
}

// Job states.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Job kinds.
const (
	KindRotate  = "rotate"
	KindRestore = "restore"
)

// What started a job.
const (
	TriggerAPI  = "api"
	TriggerCLI  = "cli"
	TriggerAuto = "auto"
)

// Step outcomes.
const (
	StepRunning = "running"
	StepOK      = "ok"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Step is one step of a job as reported.
type Step struct {
	Name    string    `json:"name"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// Report is a job as the API and the CLI show it.
type Report struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`    // rotate or restore
	Trigger   string   `json:"trigger"` // api, cli or auto
	Container string   `json:"container"`
	Strategy  Strategy `json:"strategy,omitempty"` // the strategy that ran
	// RequestedStrategy is what was asked for; Reason says why Strategy was chosen.
	RequestedStrategy Strategy `json:"requested_strategy,omitempty"`
	Reason            string   `json:"reason,omitempty"`
	DryRun            bool     `json:"dry_run,omitempty"`
	State             string   `json:"state"`
	Backup            string   `json:"backup,omitempty"`
	Plan              []string `json:"plan,omitempty"`
	// DeleteSecrets are the secrets of the embedded cluster the plan deletes, as namespace/name.
	DeleteSecrets  []string          `json:"delete_secrets,omitempty"`
	Steps          []Step            `json:"steps"`
	NotAfterBefore map[string]string `json:"not_after_before,omitempty"`
	NotAfterAfter  map[string]string `json:"not_after_after,omitempty"`
	Error          string            `json:"error,omitempty"`
	Created        time.Time         `json:"created"`
	Finished       time.Time         `json:"finished,omitzero"`
	// StartedAt is when the job last started the container: its log since then is checked.
	StartedAt time.Time `json:"started_at,omitzero"`
	// StartRequested is when the job asked for that start: a server that fails within
	// milliseconds may log before the engine's StartedAt, and its log is read from here.
	StartRequested time.Time `json:"start_requested,omitzero"`
	// ContainerState is the state the job left the container in, as watched at its end:
	// running, restarting (crash-looping), exited.
	ContainerState string `json:"container_state,omitempty"`
}

// Rotator runs rotation and restore jobs against one Docker engine.
type Rotator struct {
	eng     Engine
	cfg     Config
	logger  *slog.Logger
	metrics *Metrics
	// mine are the jobs this process runs or ran: never abandoned, whatever their journal says
	// (it may lag behind when the backup directory is full).
	mine sync.Map
}

// New makes a Rotator; metrics may be nil.
func New(eng Engine, cfg Config, logger *slog.Logger, metrics *Metrics) *Rotator {
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("process %d on %s", os.Getpid(), host)
	}
	return &Rotator{eng: eng, cfg: cfg, logger: logger, metrics: metrics}
}

// BackupDir is where backups, journals and locks are.
func (r *Rotator) BackupDir() string { return r.cfg.BackupDir }

// Lookup finds a Rancher container by name or ID.
func (r *Rotator) Lookup(ctx context.Context, name string) (rancher.Container, error) {
	return rancher.Inspect(ctx, r.eng, name)
}

// Job is one rotation or restore; its report is read concurrently through Report.
type Job struct {
	*Rotator
	c        rancher.Container
	lock     *containerLock
	progress func(Step)
	resumed  bool // a job a dead process left unfinished, found by Recover

	mu     sync.Mutex
	j      journal
	behind bool // the last journal write failed

	archive  []byte   // the backup preflight made, written by the backup step
	manifest manifest // its entries
}

// NewRotation prepares a rotation of c, taking c's lock: *ErrBusy when another job, in any
// process, rotates or restores it. A dry run takes no lock and writes nothing: no journal, no
// lock file, no directory; its report is all it leaves.
func (r *Rotator) NewRotation(c rancher.Container, s Strategy, dryRun bool, trigger string) (*Job, error) {
	return r.newJob(c, Report{Kind: KindRotate, Trigger: trigger, RequestedStrategy: s, DryRun: dryRun})
}

// NewRestore prepares the restore of a backup into c, taking c's lock.
func (r *Rotator) NewRestore(c rancher.Container, backup, trigger string) (*Job, error) {
	return r.newJob(c, Report{Kind: KindRestore, Trigger: trigger, Backup: backup})
}

func (r *Rotator) newJob(c rancher.Container, rep Report) (*Job, error) {
	id := make([]byte, 8)
	rand.Read(id)
	rep.ID, rep.Container, rep.State, rep.Created, rep.Steps = hex.EncodeToString(id), c.Name, Running, time.Now().UTC(), []Step{}
	var lock *containerLock
	if !rep.DryRun {
		var err error
		if lock, err = tryLock(r.cfg.BackupDir, c.ID, rep.ID, r.cfg.Owner); err != nil {
			return nil, err
		}
		r.mine.Store(rep.ID, true)
	}
	return &Job{Rotator: r, c: c, lock: lock, j: journal{Report: rep, ContainerID: c.ID, WasUp: c.Up(), Owner: r.cfg.Owner}}, nil
}

// Report returns a copy of the job's report.
func (j *Job) Report() Report {
	j.mu.Lock()
	defer j.mu.Unlock()
	rep := j.j.Report
	rep.Steps = append([]Step{}, rep.Steps...)
	rep.Plan = append([]string(nil), rep.Plan...)
	return rep
}

// Run runs the job to its end and releases the container's lock; progress, if set, sees each
// step as it starts and ends. A cancelled ctx stops the job between steps and rolls it back.
func (j *Job) Run(ctx context.Context, progress func(Step)) Report {
	defer j.lock.release()
	j.progress = progress
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	j.metrics.begin(j.j.Report)
	var err error
	switch {
	case j.resumed:
		err = j.resume(ctx)
	case j.j.Kind == KindRestore:
		err = j.restore(ctx)
	default:
		err = j.rotate(ctx)
	}
	return j.finish(err)
}

// finish ends the job: on failure the container is brought back and the helpers removed, and
// the journal is closed.
func (j *Job) finish(err error) Report {
	if err != nil {
		err = errors.Join(err, j.rollBack(j.resumed && j.changedFiles(), errors.Is(err, ErrStopping)))
	}
	var herr error
	if !j.j.DryRun {
		herr = j.removeHelpers()
	}
	switch {
	case herr != nil && err != nil:
		err = errors.Join(err, herr)
	case herr != nil:
		j.logger.Warn("job succeeded, but a helper container is left; the next start removes it", "job", j.j.ID, "err", herr)
	}
	state := j.finalState(err)
	j.mu.Lock()
	j.j.State, j.j.Finished, j.j.Todo, j.j.ContainerState = Succeeded, time.Now().UTC(), nil, state
	if err != nil {
		j.j.State, j.j.Error = Failed, err.Error()
	}
	rep := j.j.Report
	j.mu.Unlock()
	if serr := j.save(); serr != nil {
		j.logger.Error("cannot close the journal; the job's end is kept in memory and written when the backup directory takes it", "job", rep.ID, "state", rep.State, "err", serr)
	}
	if err == nil && rep.Kind == KindRotate && !rep.DryRun {
		if removed, perr := pruneBackups(j.cfg.BackupDir, rep.Container, j.cfg.BackupKeep); perr != nil {
			j.logger.Warn("pruning backups", "container", rep.Container, "err", perr)
		} else if len(removed) > 0 {
			j.logger.Info("pruned backups", "container", rep.Container, "removed", removed)
		}
	}
	if !rep.DryRun {
		pruneJournals(j.cfg.BackupDir)
	}
	j.metrics.end(rep)
	logger := j.logger.With("job", rep.ID, "kind", rep.Kind, "container", rep.Container)
	if err != nil {
		logger.Error("job failed", "err", err, "backup", rep.Backup)
	} else {
		logger.Info("job succeeded", "backup", rep.Backup)
	}
	return j.Report()
}

// finalState is the state a job leaves the container in: running after a verified rotation, as
// the recover step watched it after a failure, else watched now. A dry run leaves it as it was.
func (j *Job) finalState(err error) string {
	if j.j.DryRun && err == nil {
		return ""
	}
	if err == nil && j.verified() {
		return string(container.StateRunning)
	}
	j.mu.Lock()
	state := j.j.ContainerState
	j.mu.Unlock()
	if state != "" {
		return state
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return j.observe(ctx)
}

// rollBack brings back a container that ran (or crash-looped) before the job stopped it, with
// restore first putting the backup's files back. It runs on fresh contexts: the job's may be
// gone, and the engine may be restarting, for which ensureStarted waits.
// A process that is stopping has only a few seconds left: it starts the container without
// watching it through a start that may fail on the old CA (the restart policy makes the next).
func (j *Job) rollBack(restore, stopping bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if restore && j.j.Backup != "" {
		if err := j.rescueStep("restore-backup", func() (string, error) { return j.putBackupBack(ctx) }); err != nil {
			errs = append(errs, err)
		}
	}
	if j.j.WasUp && j.stoppedIt() {
		if err := j.rescueStep("recover", func() (string, error) { return j.ensureStarted(!stopping) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeHelpers removes the job's helper containers that are left (a helper removes itself
// when it ends, unless the process or the engine dies first).
func (j *Job) removeHelpers() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := j.eng.RemoveHelpers(ctx, func(l map[string]string) bool { return l[LabelJob] != j.j.ID }); err != nil {
		return fmt.Errorf("remove helper containers: %w", err)
	}
	return nil
}

// changedFiles tells whether the job began to change the container's files.
func (j *Job) changedFiles() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.j.Steps {
		if (s.Name == "remove" || s.Name == "copy") && s.Outcome != StepSkipped {
			return true
		}
	}
	return false
}

// stoppedIt tells whether the job stopped the container.
func (j *Job) stoppedIt() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, s := range j.j.Steps {
		if s.Name == "stop" && s.Outcome != StepSkipped {
			return true
		}
	}
	return false
}

// ensureStarted brings the container back after a failure (watched through its start when
// watch is set), and says truly what state it is in:
// started if it is down, and watched through its start; once more if that start ended on the
// kubeconfig of a replaced CA (the second start a rotation's verify would have made).
func (j *Job) ensureStarted(watch bool) (string, error) {
	var did []string
	for attempt := 0; attempt < 2; attempt++ {
		started, err := j.startIfDown()
		if err != nil {
			return "", err
		}
		if started {
			did = append(did, "started it again")
		}
		if !watch {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), j.cfg.SettleTime+time.Minute)
		err = j.settleLastStart(ctx)
		cancel()
		if !errors.Is(err, errUnknownAuthority) {
			break
		}
		did = append(did, "a start ended on x509: certificate signed by unknown authority")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state := j.observe(ctx)
	j.set(func(jr *journal) { jr.ContainerState = state })
	return strings.Join(append(did, "the container is "+state), "; "), nil
}

// settleLastStart settles the container's last start, whoever made it.
func (j *Job) settleLastStart(ctx context.Context) error {
	c, err := rancher.Inspect(ctx, j.eng, j.j.ContainerID)
	if err != nil {
		return err
	}
	return j.settle(ctx, j.j.ContainerID, c.StartedAt)
}

// startIfDown starts the container unless it runs or crash-loops, retrying for a minute on fresh
// contexts: it runs after a failure, when the engine may be restarting.
func (j *Job) startIfDown() (bool, error) {
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var c rancher.Container
		started := false
		if c, err = rancher.Inspect(ctx, j.eng, j.j.ContainerID); err == nil && !c.Up() {
			err, started = j.startContainer(ctx), true
		}
		cancel()
		if err == nil {
			return started, nil
		}
		if readerr.ReasonOf(err) == readerr.ContainerNotFound {
			return false, err // gone: nothing to start
		}
		time.Sleep(time.Second)
	}
	return false, err
}

// runTodo runs the steps still to do, in order; each leaves the journal one step further.
func (j *Job) runTodo(ctx context.Context) error {
	for {
		j.mu.Lock()
		if len(j.j.Todo) == 0 {
			j.mu.Unlock()
			return nil
		}
		t := j.j.Todo[0]
		j.mu.Unlock()
		if t.Skip != "" {
			j.skip(t.Name, t.Skip)
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %s: %w", t.Name, context.Cause(ctx))
		}
		if err := j.step(t.Name, func() (string, error) { return j.do(ctx, t) }); err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w: %w", cause, err) // say why the context ended
			}
			return err
		}
	}
}

// step runs fn as a named step, journaled before it changes anything and after; when it is the
// head of the todo list and succeeds, it leaves the list in the same write. A step whose start
// cannot be journaled does not run.
func (j *Job) step(name string, fn func() (string, error)) error {
	return j.runStep(name, fn, false)
}

// rescueStep is a step that brings the container back: it runs even when the journal cannot be
// written, since a container left stopped is worse than a journal that lags behind.
func (j *Job) rescueStep(name string, fn func() (string, error)) error {
	return j.runStep(name, fn, true)
}

func (j *Job) runStep(name string, fn func() (string, error), rescue bool) error {
	j.mu.Lock()
	j.j.Steps = append(j.j.Steps, Step{Name: name, Start: time.Now().UTC(), Outcome: StepRunning})
	i := len(j.j.Steps) - 1
	s := j.j.Steps[i]
	j.mu.Unlock()
	if err := j.save(); err != nil && !rescue {
		j.mu.Lock()
		j.j.Steps[i].End, j.j.Steps[i].Outcome, j.j.Steps[i].Detail = time.Now().UTC(), StepFailed, "not started: the journal cannot be written"
		j.mu.Unlock()
		return fmt.Errorf("%s: not started, the journal cannot be written: %w", name, err)
	}
	j.notify(s)

	detail, err := fn()
	j.mu.Lock()
	s = j.j.Steps[i]
	s.End, s.Outcome, s.Detail = time.Now().UTC(), StepOK, detail
	if err != nil {
		s.Outcome, s.Detail = StepFailed, err.Error()
	} else if len(j.j.Todo) > 0 && j.j.Todo[0].Name == name {
		j.j.Todo = j.j.Todo[1:]
	}
	j.j.Steps[i] = s
	j.mu.Unlock()
	if serr := j.save(); serr != nil {
		// What the step did is done: the job goes on with the truth in memory, and the journal
		// is written again by the next step, at the job's end or later (journalBehind).
		j.logger.Warn("the journal cannot be written after a step; the job goes on", "job", j.j.ID, "step", name, "err", serr)
	}
	j.notify(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// skip records a step that is not run, and leaves the todo list.
func (j *Job) skip(name, why string) {
	now := time.Now().UTC()
	s := Step{Name: name, Start: now, End: now, Outcome: StepSkipped, Detail: why}
	j.mu.Lock()
	j.j.Steps = append(j.j.Steps, s)
	if len(j.j.Todo) > 0 && j.j.Todo[0].Name == name {
		j.j.Todo = j.j.Todo[1:]
	}
	j.mu.Unlock()
	_ = j.save() // the next step's save records it too
	j.notify(s)
}

func (j *Job) notify(s Step) {
	if j.progress != nil {
		j.progress(s)
	}
}

func (j *Job) set(fn func(j *journal)) {
	j.mu.Lock()
	fn(&j.j)
	j.mu.Unlock()
}

// save writes the journal, and remembers whether the journal on disk is behind.
func (j *Job) save() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.j.DryRun {
		return nil
	}
	err := j.j.save(j.cfg.BackupDir)
	j.behind = err != nil
	return err
}

// journalBehind tells whether the journal on disk lacks the job's last change.
func (j *Job) journalBehind() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.behind
}
