package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Resumable finds the jobs that dead processes left unfinished — their journal says running
// and no live process holds their container's lock — and returns them ready to run, holding
// those locks: Run finishes each. It reads the journals only; with sweep (at the start of a
// process that may rotate) it also removes the helper containers of this backup directory's
// jobs that no live process holds (those of the jobs found go when those jobs end). A helper of
// another backup directory's job — another exporter's — is never touched.
func (r *Rotator) Resumable(ctx context.Context, sweep bool) ([]*Job, error) {
	all, errs := journals(r.cfg.BackupDir)
	var jobs []*Job
	for _, jr := range all {
		if _, ok := r.mine.Load(jr.ID); jr.State != Running || ok {
			continue
		}
		lock, err := tryLock(r.cfg.BackupDir, jr.ContainerID, jr.ID, r.cfg.Owner)
		var busy *ErrBusy
		if errors.As(err, &busy) {
			continue // its process lives and finishes it, or we took it for another journal
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.mine.Store(jr.ID, true)
		jobs = append(jobs, &Job{rot: r, lock: lock, j: *jr, resumed: true})
	}
	if !sweep {
		return jobs, errors.Join(errs...)
	}
	removed, herr := r.eng.RemoveHelpers(ctx, func(labels map[string]string) bool {
		_, jerr := readJournal(r.cfg.BackupDir, labels[rancher.LabelJob])
		return jerr != nil || !lockFree(r.cfg.BackupDir, labels[rancher.LabelContainer])
	})
	if herr != nil {
		errs = append(errs, fmt.Errorf("remove leftover helper containers: %w", herr))
	}
	for _, labels := range removed {
		r.logger.Info("removed a helper container a dead process left", "job", labels[rancher.LabelJob], "container_id", labels[rancher.LabelContainer])
	}
	return jobs, errors.Join(errs...)
}

// Resume starts in js the jobs Resumable finds. Without sweep it makes no Docker call, so it runs
// before every request and every round of the automatic rotation: a CLI that died while the
// exporter runs does not leave its container stopped until the next start.
func (r *Rotator) Resume(ctx context.Context, js *Jobs, sweep bool) {
	found, err := r.Resumable(ctx, sweep)
	if err != nil {
		r.logger.Warn("resuming unfinished jobs", "err", err)
	}
	for _, job := range found {
		r.logger.Warn("finishing a job that a dead process left unfinished", "job", job.j.ID, "kind", job.j.Kind,
			"container", job.j.Container, "owner", job.j.Owner)
		js.Start(job)
	}
}

// resume finishes a job a dead process left: the step it was in is marked interrupted, and
// the steps still to do run again from the first (each is idempotent).
func (j *Job) resume(ctx context.Context) error {
	interrupted := "between steps"
	j.set(func(jr *journal) {
		for i, s := range jr.Steps {
			if s.Outcome == StepRunning {
				jr.Steps[i].Outcome, jr.Steps[i].Detail = StepFailed, "interrupted: the process running the job died"
				interrupted = "during " + string(s.Name)
			}
		}
	})
	c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
	j.c = c
	todo := make([]string, len(j.j.Todo))
	for i, t := range j.j.Todo {
		todo[i] = string(t.Name)
	}
	if err := j.step("recover", func() (string, error) {
		if err != nil {
			return "", err
		}
		detail := fmt.Sprintf("recovered after interruption: %s died %s", j.j.Owner, interrupted)
		if len(todo) > 0 {
			detail += "; resuming with " + strings.Join(todo, ", ")
		}
		return detail, nil
	}); err != nil {
		return err
	}
	if len(todo) == 0 {
		if j.verified() {
			return nil
		}
		return errors.New("interrupted before its plan was made: nothing was changed; run it again")
	}
	return j.runTodo(ctx)
}

// verified tells whether the job's last verify succeeded: a job that died after it is done.
func (j *Job) verified() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.j.Steps) - 1; i >= 0; i-- {
		if s := j.j.Steps[i]; s.Name == "verify" {
			return s.Outcome == StepOK
		}
	}
	return false
}
