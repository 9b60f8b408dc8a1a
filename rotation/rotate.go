package rotation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
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
		j.set(func(r *Report) { r.Strategy, r.Reason, r.Plan, r.NotAfterBefore = s, reason, files, before.notAfter() })
		if err := checkRemovable(files); err != nil {
			return "", err
		}
		if err := checkServingRenewable(j.c, s, before, time.Now()); err != nil {
			return "", err
		}
		return fmt.Sprintf("container %s, strategy %s: %s; %d files to remove", j.c.State, s, reason, len(files)), nil
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
	return j.step("verify", func() (string, error) { return j.verify(ctx, before, started) })
}

// checkServingRenewable refuses a rotation that cannot renew the 6443 serving certificate
// where it is the one expiring: before k3s v1.19 the listener reloads it from the
// kube-system/k3s-serving secret, so removing dynamic-cert.json alone changes nothing.
func checkServingRenewable(c rancher.Container, s Strategy, t tree, now time.Time) error {
	if !c.Profile.ServingFromSecret() || s == AllCerts {
		return nil
	}
	for p, cert := range t {
		if rancher.IsListenerCache(p) && cert.NotAfter.Sub(now) < dueWithin {
			return fmt.Errorf("the 6443 serving certificate (%s) expires %s, and %s reloads it from the kube-system/k3s-serving secret: "+
				"removing the file does not renew it. Delete that secret first (docker exec %s kubectl -n kube-system delete secret k3s-serving), then rotate",
				p, cert.NotAfter.UTC().Format(time.RFC3339), describe(c.Profile), c.Name)
		}
	}
	return nil
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
	return detail + fmt.Sprintf("running, no x509 errors, %d leaves renewed and signed by the current CAs", len(after.leaves())), nil
}
