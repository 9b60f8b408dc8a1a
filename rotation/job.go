// Package rotation rotates the k3s certificates of a Rancher container safely: verified backup
// first, keys never touched, works on a crash-looping container, verified after. It also
// restores a backup. Every job is journaled, so a process that dies mid-job leaves nothing
// that the next one does not finish, and runs alone on its container, whatever the process.
// The HTTP API and the CLI both run the same jobs.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Job is one rotation or restore; its report is read concurrently through Report.
type Job struct {
	rot      *Rotator
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
	ctx, cancel := context.WithTimeout(ctx, j.rot.cfg.Timeout)
	defer cancel()
	j.rot.metrics.begin(j.j.Report)
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
		j.rot.logger.Warn("job succeeded, but a helper container is left; the next start removes it", "job", j.j.ID, "err", herr)
	}
	state := j.finalState(err)
	if err == nil && j.j.Kind == KindRotate && !j.j.DryRun {
		// Before the job is seen to end: whoever sees it succeeded sees the backups pruned.
		if removed, perr := pruneBackups(j.rot.cfg.BackupDir, j.j.Container, j.rot.cfg.BackupKeep); perr != nil {
			j.rot.logger.Warn("pruning backups", "container", j.j.Container, "err", perr)
		} else if len(removed) > 0 {
			j.rot.logger.Info("pruned backups", "container", j.j.Container, "removed", removed)
		}
	}
	j.mu.Lock()
	j.j.State, j.j.Finished, j.j.Todo, j.j.ContainerState = Succeeded, time.Now().UTC(), nil, state
	if err != nil {
		j.j.State, j.j.Error = Failed, err.Error()
	}
	rep := j.j.Report
	j.mu.Unlock()
	if serr := j.save(); serr != nil {
		j.rot.logger.Error("cannot close the journal; the job's end is kept in memory and written when the backup directory takes it", "job", rep.ID, "state", rep.State, "err", serr)
	}
	if !rep.DryRun {
		pruneJournals(j.rot.cfg.BackupDir)
	}
	j.rot.metrics.end(rep)
	logger := j.rot.logger.With("job", rep.ID, "kind", rep.Kind, "container", rep.Container)
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
	if j.deletedObjects() {
		// What the owners did not issue again is put back from the backup: the cluster is left
		// as it was, not without its certificates.
		if err := j.rescueStep(StepRestoreObjs, func() (string, error) { return j.putObjectsBack(ctx, true) }); err != nil {
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
	if _, err := j.rot.eng.RemoveHelpers(ctx, func(l map[string]string) bool { return l[rancher.LabelJob] != j.j.ID }); err != nil {
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
		ctx, cancel := context.WithTimeout(context.Background(), j.rot.cfg.SettleTime+time.Minute)
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
	c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
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
		if c, err = rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID); err == nil && !c.Up() {
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
