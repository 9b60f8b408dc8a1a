package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

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
func (j *Job) step(name StepName, fn func() (string, error)) error {
	return j.runStep(name, fn, false)
}

// rescueStep is a step that brings the container back: it runs even when the journal cannot be
// written, since a container left stopped is worse than a journal that lags behind.
func (j *Job) rescueStep(name StepName, fn func() (string, error)) error {
	return j.runStep(name, fn, true)
}

func (j *Job) runStep(name StepName, fn func() (string, error), rescue bool) error {
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
		j.rot.logger.Warn("the journal cannot be written after a step; the job goes on", "job", j.j.ID, "step", name, "err", serr)
	}
	j.notify(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// skip records a step that is not run, and leaves the todo list.
func (j *Job) skip(name StepName, why string) {
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
	err := j.j.save(j.rot.cfg.BackupDir)
	j.behind = err != nil
	return err
}

// journalBehind tells whether the journal on disk lacks the job's last change.
func (j *Job) journalBehind() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.behind
}
