package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// rotate is the rotation state machine: preflight, backup, stop, remove, start, verify.
func (j *Job) rotate(ctx context.Context) (err error) {
	var before tree
	var files []string
	var s Strategy
	if err := j.step("preflight", func() (string, error) {
		if !rancher.IsRancherImage(j.c.Image) {
			return "", fmt.Errorf("container %s runs %s, not a rancher/rancher image", j.c.Name, j.c.Image)
		}
		var err error
		if before, err = readTree(ctx, j.eng.cli, j.c); err != nil {
			return "", err
		}
		if len(before.leaves()) == 0 {
			return "", fmt.Errorf("no k3s leaf certificate found under %s", rancher.ServerTLSDir)
		}
		var reason string
		s, reason = choose(j.report.RequestedStrategy, j.c.Profile, before, time.Now())
		files = plan(s, before)
		var secrets []string
		if deletesServingSecret(j.c.Profile, s) {
			secrets = []string{servingSecretName()}
		}
		j.set(func(r *Report) {
			r.Strategy, r.Reason, r.Plan, r.DeleteSecrets, r.NotAfterBefore = s, reason, files, secrets, before.notAfter()
		})
		if err := checkRemovable(files); err != nil {
			return "", err
		}
		detail := fmt.Sprintf("container %s, strategy %s: %s; %d files to remove", j.c.State, s, reason, len(files))
		if len(secrets) > 0 {
			detail += fmt.Sprintf(", and the secret %s, from which %s would reload the serving certificate", secrets[0], describe(j.c.Profile))
		}
		return detail, nil
	}); err != nil {
		return err
	}
	if j.report.DryRun {
		return nil
	}

	if err := j.step("backup", func() (string, error) {
		file, m, err := writeBackup(ctx, j.eng.cli, j.c, j.cfg.BackupDir, time.Now())
		if file != "" {
			j.set(func(r *Report) { r.Backup = file })
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %d entries written, read back and verified", file, len(m)), nil
	}); err != nil {
		return err // nothing has changed
	}

	defer j.recoverOnFailure(&err)
	secretLeft := len(j.report.DeleteSecrets) > 0
	if secretLeft {
		if err := j.step("delete-secret", func() (string, error) {
			if !j.c.Up() {
				return fmt.Sprintf("container %s: deleting after the start", j.c.State), nil
			}
			detail, err := j.deleteServingSecret(ctx, 0)
			if readerr.ReasonOf(err) == readerr.APIUnreachable {
				return fmt.Sprintf("the API server did not answer (%v): deleting after the start", err), nil
			}
			secretLeft = err != nil
			return detail, err
		}); err != nil {
			return err
		}
	}
	if err := j.step("stop", func() (string, error) { return "", j.eng.stop(ctx, j.c.ID) }); err != nil {
		return err
	}
	if s == Restart {
		j.skip("remove", "strategy restart removes nothing")
	} else if err := j.step("remove", func() (string, error) {
		return strings.Join(files, " "), j.eng.removeFiles(ctx, j.c, files)
	}); err != nil {
		return err
	}
	started := time.Now()
	if err := j.step("start", func() (string, error) { return "", j.eng.start(ctx, j.c.ID) }); err != nil {
		return err
	}
	if secretLeft {
		// The listener has reloaded the old certificate from the secret: delete it now that the
		// API server runs, remove the cache it rewrote, and start once more.
		cache := []string{rancher.ServerTLSDir + "/" + certs.DynamicCertFile}
		steps := []struct {
			name string
			fn   func() (string, error)
		}{
			{"delete-secret", func() (string, error) { return j.deleteServingSecret(ctx, j.cfg.SettleTime+time.Minute) }},
			{"stop", func() (string, error) { return "", j.eng.stop(ctx, j.c.ID) }},
			{"remove", func() (string, error) { return strings.Join(cache, " "), j.eng.removeFiles(ctx, j.c, cache) }},
			{"start", func() (string, error) { started = time.Now(); return "", j.eng.start(ctx, j.c.ID) }},
		}
		for _, st := range steps {
			if err := j.step(st.name, st.fn); err != nil {
				return err
			}
		}
	}
	return j.step("verify", func() (string, error) { return j.verify(ctx, before, started) })
}

// verify waits for a clean start, restarting once more when k3s fails on its listener cache,
// then checks the certificates.
func (j *Job) verify(ctx context.Context, before tree, started time.Time) (string, error) {
	detail := ""
	err := j.settle(ctx, j.c.ID, started)
	if errors.Is(err, errUnknownAuthority) {
		detail = "first start failed with x509: certificate signed by unknown authority; restarted once more. "
		if err = j.eng.stop(ctx, j.c.ID); err == nil {
			started = time.Now()
			if err = j.eng.start(ctx, j.c.ID); err == nil {
				err = j.settle(ctx, j.c.ID, started)
			}
		}
	}
	if err != nil {
		return detail, err
	}
	after, err := readTree(ctx, j.eng.cli, j.c)
	if err != nil {
		return detail, err
	}
	j.set(func(r *Report) { r.NotAfterAfter = after.notAfter() })
	if err := checkTree(before, after, j.report.Strategy, j.c.Profile, time.Now()); err != nil {
		return detail, err
	}
	if len(j.report.DeleteSecrets) > 0 {
		served, err := j.checkServing(ctx, before, time.Now())
		if err != nil {
			return detail, err
		}
		detail += served + "; "
	}
	return detail + fmt.Sprintf("running, no x509 errors, %d leaves renewed and signed by the current CAs", len(after.leaves())), nil
}
