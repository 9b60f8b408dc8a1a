// Package rotation rotates the k3s certificates of a Rancher container safely: verified backup
// first, keys never touched, works on a crash-looping container, verified after. It also
// restores a backup. The HTTP API and the CLI both run the same jobs.
package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Config bounds and places the jobs.
type Config struct {
	BackupDir   string
	SettleTime  time.Duration // how long a started container must run cleanly
	StopTimeout time.Duration // docker stop grace period
	Timeout     time.Duration // a whole job
}

// Job states.
const (
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
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
	Kind      string   `json:"kind"` // rotate or restore
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
}

// Rotator runs rotation and restore jobs against one Docker engine.
type Rotator struct {
	eng     engine
	cfg     Config
	logger  *slog.Logger
	metrics *Metrics
}

// New makes a Rotator; metrics may be nil.
func New(cli *client.Client, cfg Config, logger *slog.Logger, metrics *Metrics) *Rotator {
	return &Rotator{eng: engine{cli: cli, stopTimeout: cfg.StopTimeout}, cfg: cfg, logger: logger, metrics: metrics}
}

// Lookup finds a Rancher container by name or ID.
func (r *Rotator) Lookup(ctx context.Context, name string) (rancher.Container, error) {
	return rancher.Inspect(ctx, r.eng.cli, name)
}

// Job is one rotation or restore; its report is read concurrently through Report.
type Job struct {
	*Rotator
	c        rancher.Container
	mu       sync.Mutex
	report   Report
	progress func(Step)
}

// NewRotation prepares a rotation of c.
func (r *Rotator) NewRotation(c rancher.Container, s Strategy, dryRun bool) *Job {
	return r.newJob(c, Report{Kind: "rotate", RequestedStrategy: s, DryRun: dryRun})
}

// NewRestore prepares the restore of a backup into c.
func (r *Rotator) NewRestore(c rancher.Container, backup string) *Job {
	return r.newJob(c, Report{Kind: "restore", Backup: backup})
}

func (r *Rotator) newJob(c rancher.Container, rep Report) *Job {
	id := make([]byte, 8)
	rand.Read(id)
	rep.ID, rep.Container, rep.State, rep.Created = hex.EncodeToString(id), c.Name, Running, time.Now().UTC()
	rep.Steps = []Step{}
	return &Job{Rotator: r, c: c, report: rep}
}

// Report returns a copy of the job's report.
func (j *Job) Report() Report {
	j.mu.Lock()
	defer j.mu.Unlock()
	rep := j.report
	rep.Steps = append([]Step{}, rep.Steps...)
	rep.Plan = append([]string(nil), rep.Plan...)
	return rep
}

// Run runs the job to its end; progress, if set, sees each step as it starts and ends.
func (j *Job) Run(ctx context.Context, progress func(Step)) Report {
	j.progress = progress
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	j.metrics.begin(j.c.Name)
	var err error
	if j.report.Kind == "restore" {
		err = j.restore(ctx)
	} else {
		err = j.rotate(ctx)
	}
	j.mu.Lock()
	j.report.State, j.report.Finished = Succeeded, time.Now().UTC()
	if err != nil {
		j.report.State, j.report.Error = Failed, err.Error()
	}
	state := j.report.State
	j.mu.Unlock()
	j.metrics.end(j.c.Name, j.report.Kind, state, j.report.DryRun)
	logger := j.logger.With("job", j.report.ID, "kind", j.report.Kind, "container", j.c.Name)
	if err != nil {
		logger.Error("job failed", "err", err, "backup", j.report.Backup)
	} else {
		logger.Info("job succeeded", "backup", j.report.Backup)
	}
	return j.Report()
}

// step runs fn as a named step of the report.
func (j *Job) step(name string, fn func() (string, error)) error {
	j.mu.Lock()
	j.report.Steps = append(j.report.Steps, Step{Name: name, Start: time.Now().UTC(), Outcome: StepRunning})
	i := len(j.report.Steps) - 1
	s := j.report.Steps[i]
	j.mu.Unlock()
	j.notify(s)

	detail, err := fn()
	j.mu.Lock()
	s = j.report.Steps[i]
	s.End, s.Outcome, s.Detail = time.Now().UTC(), StepOK, detail
	if err != nil {
		s.Outcome, s.Detail = StepFailed, err.Error()
	}
	j.report.Steps[i] = s
	j.mu.Unlock()
	j.notify(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (j *Job) skip(name, why string) {
	now := time.Now().UTC()
	s := Step{Name: name, Start: now, End: now, Outcome: StepSkipped, Detail: why}
	j.mu.Lock()
	j.report.Steps = append(j.report.Steps, s)
	j.mu.Unlock()
	j.notify(s)
}

func (j *Job) notify(s Step) {
	if j.progress != nil {
		j.progress(s)
	}
}

func (j *Job) set(fn func(r *Report)) {
	j.mu.Lock()
	fn(&j.report)
	j.mu.Unlock()
}

// wasUp tells whether the container ran (or crash-looped) before the job: it must not be
// left stopped.
func (j *Job) wasUp() bool {
	return j.c.State == container.StateRunning || j.c.State == container.StateRestarting
}

// recoverOnFailure starts the container again after a failed step, if it was up before.
func (j *Job) recoverOnFailure(err *error) {
	if *err == nil || !j.wasUp() {
		return
	}
	if rerr := j.step("recover", func() (string, error) {
		return "container started again after the failure", j.eng.ensureStarted(j.c.ID)
	}); rerr != nil {
		*err = errors.Join(*err, rerr)
	}
}
