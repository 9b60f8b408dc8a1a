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
	s := j.report.Strategy
	if err := j.step("preflight", func() (string, error) {
		if !rancher.IsRancherImage(j.c.Image) {
			return "", fmt.Errorf("container %s runs %s, not a rancher/rancher image", j.c.Name, j.c.Image)
		}
		var err error
		if before, err = readTree(ctx, j.eng.cli, j.c.ID); err != nil {
			return "", err
		}
		if len(before.leaves()) == 0 {
			return "", fmt.Errorf("no k3s leaf certificate found under %s", rancher.ServerTLSDir)
		}
		files = plan(s, before)
		if err := checkRemovable(files); err != nil {
			return "", err
		}
		j.set(func(r *Report) { r.Plan, r.NotAfterBefore = files, before.notAfter() })
		return fmt.Sprintf("container %s, strategy %s: %d files to remove", j.c.State, s, len(files)), nil
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
	after, err := readTree(ctx, j.eng.cli, j.c.ID)
	if err != nil {
		return detail, err
	}
	j.set(func(r *Report) { r.NotAfterAfter = after.notAfter() })
	if err := checkTree(before, after, j.report.Strategy, time.Now()); err != nil {
		return detail, err
	}
	return detail + fmt.Sprintf("running, no x509 errors, %d leaves renewed and signed by the current CAs", len(after.leaves())), nil
}
