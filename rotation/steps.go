package rotation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// do runs one step of the todo list. Every step is idempotent: a step a dead process began is
// run again whole.
func (j *Job) do(ctx context.Context, t todo) (string, error) {
	switch t.Name {
	case "backup":
		return j.backup(ctx)
	case StepDeleteSecret:
		if t.Wait {
			return j.deleteObjects(ctx, j.rot.cfg.SettleTime+time.Minute)
		}
		return j.deleteSecretBeforeStop(ctx)
	case StepRestoreObjs:
		return j.putObjectsBack(ctx, false)
	case "stop":
		return "", j.changing(ctx, func(ctx context.Context) error {
			err := j.rot.eng.Stop(ctx, j.j.ContainerID)
			stall(j.rot.cfg.Stall, "stop")
			return err
		})
	case "remove":
		if err := checkRemovable(t.Files); err != nil {
			return "", err
		}
		return strings.Join(t.Files, " "), j.changing(ctx, func(ctx context.Context) error {
			return j.rot.eng.RunHelper(ctx, j.c, j.j.ID, append([]string{"rm", "-f", "--"}, t.Files...))
		})
	case "copy":
		return "", j.changing(ctx, j.copyIn)
	case "start":
		return "", j.changing(ctx, j.startContainer)
	case "second-start":
		return j.secondStart(ctx)
	case "verify":
		stall(j.rot.cfg.Stall, "verify")
		if j.j.Kind == KindRestore {
			return j.verifyRestore(ctx, t.Final)
		}
		return j.verifyRotation(ctx, t.Final)
	}
	return "", fmt.Errorf("unknown step %q in the journal", t.Name)
}

// startContainer starts the container and notes its start as the engine has it — the start of
// a process that died is that start — when it was asked for, and its restart count then.
func (j *Job) startContainer(ctx context.Context) error {
	requested := time.Now()
	if err := j.rot.eng.Start(ctx, j.j.ContainerID); err != nil {
		return err
	}
	stall(j.rot.cfg.Stall, "start")
	c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
	if err != nil {
		return err
	}
	startedAt, restarts := c.StartedAt.UTC(), c.RestartCount
	if restarts > 0 {
		// docker start resets the count: the start failed and the restart policy made another
		// before this inspection (a loaded host). The job's own start is the request's.
		startedAt, restarts = requested.UTC(), 0
	}
	j.set(func(jr *journal) {
		jr.StartedAt, jr.StartRequested, jr.RestartsAtStart = startedAt, requested.UTC(), restarts
	})
	return nil
}

// logsSince is when the log of the container's last start begins: the earlier of the job's
// request and the engine's StartedAt.
func (j *Job) logsSince() time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	if r := j.j.StartRequested; !r.IsZero() && r.Before(j.j.StartedAt) {
		return r
	}
	return j.j.StartedAt
}

// changing runs a call that changes the container to its end even when the job is cancelled
// meanwhile (a half-done stop would finish after the job gave up on it): cancellation takes
// effect between steps.
func (j *Job) changing(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.rot.cfg.StopTimeout+time.Minute)
	defer cancel()
	return fn(ctx)
}

// insertAfter puts steps into the todo list after the first todo named after (after the head
// when there is none). Called from a running step, which is the head.
func (j *Job) insertAfter(after StepName, steps ...todo) {
	j.mu.Lock()
	defer j.mu.Unlock()
	at := 1
	for i, t := range j.j.Todo {
		if i > 0 && t.Name == after {
			at = i + 1
			break
		}
	}
	at = min(at, len(j.j.Todo))
	j.j.Todo = append(j.j.Todo[:at], append(steps, j.j.Todo[at:]...)...)
}

// deleteSecretBeforeStop deletes the planned secrets while the API server answers; when the
// container is down or its API server does not answer, they are deleted after the start
// instead, and a second stop and start follow: for the serving secret, from which the listener
// reloaded the old certificate, with the cache it rewrote removed in between; for Rancher's
// own, for their owners to issue them at that start.
func (j *Job) deleteSecretBeforeStop(ctx context.Context) (string, error) {
	c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
	if err != nil {
		return "", err
	}
	why := fmt.Sprintf("container %s", c.State)
	if c.Up() {
		detail, err := j.deleteObjects(ctx, 0)
		if !isUnreachable(err) {
			return detail, err
		}
		why = fmt.Sprintf("the API server did not answer (%v)", err)
	}
	steps := []todo{{Name: StepDeleteSecret, Wait: true}, {Name: "stop"}}
	if slices.Contains(j.j.DeleteSecrets, servingSecretName()) {
		steps = append(steps, todo{Name: "remove", Files: []string{rancher.ServerTLSDir + "/" + certs.DynamicCertFile}})
	}
	j.insertAfter("start", append(steps, todo{Name: "start"})...)
	return why + ": deleting after the start, then restarting once more", nil
}
