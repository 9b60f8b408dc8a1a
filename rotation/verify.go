package rotation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// errUnknownAuthority is the start that fails because Rancher connected to k3s with the
// kubeconfig of the previous start, signed by the CA the rotation replaced; k3s has rewritten it
// by then, so the next start works. Real Rancher containers run with a restart policy, which
// often makes that next start itself.
var errUnknownAuthority = errors.New("the log shows x509: certificate signed by unknown authority")

// settle watches the container for the settle time after a start: it must keep running
// without restarting, and its log since the start must be free of x509 errors.
func (j *Job) settle(ctx context.Context, id string, started time.Time) error {
	first, err := rancher.Inspect(ctx, j.rot.eng, id)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(j.rot.cfg.SettleTime)
	for {
		c, err := rancher.Inspect(ctx, j.rot.eng, id)
		if err != nil {
			return err
		}
		if c.State != container.StateRunning || c.RestartCount != first.RestartCount {
			logs, err := j.rot.eng.Logs(ctx, id, started)
			if err != nil {
				return fmt.Errorf("container is %s with %d restarts since the start; read log: %w", c.State, c.RestartCount-first.RestartCount, err)
			}
			if strings.Contains(logs, unknownAuthority) {
				return errUnknownAuthority
			}
			return fmt.Errorf("container is %s with %d restarts since the start%s", c.State, c.RestartCount-first.RestartCount, tail(logs))
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(j.poll()):
		}
	}
	logs, err := j.rot.eng.Logs(ctx, id, started)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	if strings.Contains(logs, unknownAuthority) {
		return errUnknownAuthority
	}
	if line := firstLineWith(logs, "x509:"); line != "" {
		return fmt.Errorf("x509 error in the log since the start: %s", line)
	}
	return nil
}

const unknownAuthority = "x509: certificate signed by unknown authority"

// policyRestartWait is how long the second start waits for the restart policy to make it.
const policyRestartWait = 30 * time.Second

// secondStart makes the start that follows an unknown-authority start: the restart policy's,
// when the container has one and it started the container again since the job's start, else the
// job's own. Idempotent: run again, it finds the container started since.
func (j *Job) secondStart(ctx context.Context) (string, error) {
	deadline := time.Now().Add(policyRestartWait)
	for {
		c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
		if err != nil {
			return "", err
		}
		if c.State == container.StateRunning && c.StartedAt.After(j.j.StartedAt) {
			by := "the job" // a process that died had made it
			if c.RestartCount > j.j.RestartsAtStart {
				by = "its restart policy"
			}
			j.set(func(jr *journal) {
				jr.StartedAt, jr.StartRequested, jr.RestartsAtStart = c.StartedAt.UTC(), time.Time{}, c.RestartCount
			})
			return fmt.Sprintf("started again by %s at %s", by, c.StartedAt.UTC().Format(time.RFC3339)), nil
		}
		waiting := c.RestartsOnExit && (c.State == container.StateRestarting || c.State == container.StateExited)
		if !waiting || time.Now().After(deadline) {
			break // no restart policy will start it (or it hangs on the old CA): start it ourselves
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(j.poll()):
		}
	}
	err := j.changing(ctx, func(ctx context.Context) error {
		if err := j.rot.eng.Stop(ctx, j.j.ContainerID); err != nil {
			return err
		}
		return j.startContainer(ctx)
	})
	if err != nil {
		return "", err
	}
	return "stopped and started once more", nil
}

// observe says truthfully what state a container is in: a container that is running now but
// restarted in the few seconds it is watched, or since the job last started it, crash-loops.
func (j *Job) observe(ctx context.Context) string {
	c, err := rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID)
	if err != nil {
		return "unknown: " + err.Error()
	}
	first := c
	for deadline := time.Now().Add(min(j.rot.cfg.SettleTime, observeFor)); c.State == container.StateRunning && c.RestartCount == first.RestartCount && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return string(c.State)
		case <-time.After(j.poll()):
		}
		if c, err = rancher.Inspect(ctx, j.rot.eng, j.j.ContainerID); err != nil {
			return "unknown: " + err.Error()
		}
	}
	restarts := c.RestartCount - j.j.RestartsAtStart
	switch {
	case c.State == container.StateRestarting, c.Up() && c.RestartCount != first.RestartCount:
		return fmt.Sprintf("restarting: crash-looping, %d restarts since the job last started it", restarts)
	case c.State == container.StateRunning && j.j.StartedAt.IsZero():
		return "running"
	case c.State == container.StateRunning && restarts > 0:
		return fmt.Sprintf("running, after %d restarts since the job last started it", restarts)
	}
	return string(c.State)
}

// poll is how often a job looks at the container while it waits: twice a second, or ten times
// in the settle time when that is shorter.
func (j *Job) poll() time.Duration {
	return min(500*time.Millisecond, max(j.rot.cfg.SettleTime/10, 10*time.Millisecond))
}

// observeFor is how long, at most, a running container is watched before it is said to run:
// the settle time, up to this.
const observeFor = 3 * time.Second

// checkTree verifies the certificates after a start: what the strategy set out to renew is
// renewed, every leaf is signed by a current CA, the listener cache by the current server CA.
func checkTree(before, after tree, s Strategy, p rancher.Profile, now time.Time) error {
	var problems []string
	for _, f := range before.renewable() {
		old := before[f]
		if !mustRenew(f, old.NotAfter.Sub(now), s, p) {
			continue
		}
		cur, ok := after[f]
		switch {
		case !ok:
			problems = append(problems, f+" is missing")
		case !cur.NotAfter.After(old.NotAfter):
			msg := fmt.Sprintf("%s still expires %s", f, cur.NotAfter.UTC().Format(time.RFC3339))
			if s == Restart {
				msg += ": k3s did not renew it on start; rotate with a strategy that removes it (auto picks one)"
			}
			problems = append(problems, msg)
		}
	}
	cas := after.cas()
	for _, f := range after.leaves() {
		if !signedByAny(after[f], cas) {
			problems = append(problems, f+" is not signed by any current CA")
		}
	}
	serverCA, ok := after[rancher.ServerCAFile]
	for f, c := range after {
		if rancher.IsListenerCache(f) && (!ok || !signedByAny(c, []*x509.Certificate{serverCA})) {
			problems = append(problems, f+" is not signed by the current server-ca")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// mustRenew tells whether a strategy must have renewed a certificate that had left to live:
// leaf and all-certs re-issue every leaf, and the listener cache when it was due; a restart
// must renew what is due and what the release renews on start.
func mustRenew(f string, left time.Duration, s Strategy, p rancher.Profile) bool {
	due := left < dueWithin
	switch {
	case s == Restart:
		return due || p.RenewsOnStart(f, left)
	case rancher.IsListenerCache(f):
		return due && s == Leaf
	}
	return true
}

func signedByAny(cert *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if bytes.Equal(cert.RawIssuer, ca.RawSubject) && cert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func firstLineWith(logs, substr string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, substr) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// tail is the end of a log, for error messages.
func tail(logs string) string {
	if logs == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return "; log: " + strings.Join(lines, " | ")
}
