package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// rotate makes the plan in preflight, then runs it: backup, (delete-secret,) stop, remove,
// start, verify, each step journaled.
func (j *Job) rotate(ctx context.Context) error {
	if err := j.step("preflight", func() (string, error) { return j.preflight(ctx) }); err != nil {
		return err
	}
	if j.j.DryRun {
		return nil
	}
	return j.runTodo(ctx)
}

// preflight reads the certificates into the backup archive, in memory, chooses the strategy
// and plans the steps; it changes nothing, and refuses what could not be finished safely.
func (j *Job) preflight(ctx context.Context) (string, error) {
	if !rancher.IsRancherImage(j.c.Image) {
		return "", fmt.Errorf("container %s runs %s, not a rancher/rancher image", j.c.Name, j.c.Image)
	}
	now := time.Now()
	secrets, err := j.planSecrets(ctx, j.j.Secrets, j.j.RequestedStrategy == Auto, now)
	if err != nil {
		return "", err
	}
	data, m, size, err := archive(ctx, j.rot.eng, j.c, secrets.objects)
	if err != nil {
		return "", err
	}
	all, err := treeOf(data)
	if err != nil {
		return "", err
	}
	before := all.inUse(j.c.Profile)
	if len(before.leaves()) == 0 {
		return "", fmt.Errorf("no k3s leaf certificate found under %s", rancher.ServerTLSDir)
	}
	s, reason := choose(j.j.RequestedStrategy, j.c.Profile, before, now, len(secrets.secrets) > 0)
	files := plan(s, before)
	deletes := secrets.secrets
	why := secrets.why
	if deletesServingSecret(j.c.Profile, s) {
		deletes = append([]string{servingSecretName()}, deletes...)
		why[servingSecretName()] = describe(j.c.Profile) + " reloads its serving certificate from it at start: deleted with the listener cache"
	}
	notAfter := before.notAfter()
	for k, v := range secrets.notAfter {
		notAfter[k] = v
	}
	if secrets.note != "" {
		reason += "; in-cluster certificates: " + secrets.note
	}
	j.set(func(jr *journal) {
		jr.Strategy, jr.Reason, jr.Plan, jr.NotAfterBefore = s, reason, files, notAfter
		jr.DeleteSecrets, jr.DeleteWebhooks = deletes, secrets.webhooks
		if len(why) > 0 {
			jr.DeleteWhy = why
		}
	})
	if err := checkRemovable(files); err != nil {
		return "", err
	}
	if !j.j.DryRun {
		if err := checkFreeSpace(j.rot.cfg.BackupDir, size); err != nil {
			return "", err
		}
		j.archive, j.manifest = data, m
		j.set(func(jr *journal) { jr.Todo = rotationSteps(s, files, deletes) })
	}
	detail := fmt.Sprintf("container %s, strategy %s: %s; %d files to remove", j.c.State, s, reason, len(files))
	if len(deletes) > 0 {
		detail += "; secrets to delete: " + strings.Join(deletes, ", ")
	}
	if len(secrets.webhooks) > 0 {
		detail += " and the webhook configuration " + strings.Join(secrets.webhooks, ", ") + " that would refuse their creation"
	}
	return detail, nil
}

// rotationSteps is the plan as the todo list of the journal.
func rotationSteps(s Strategy, files, secrets []string) []todo {
	steps := []todo{{Name: "backup"}}
	if len(secrets) > 0 {
		steps = append(steps, todo{Name: StepDeleteSecret})
	}
	steps = append(steps, todo{Name: "stop"})
	if s == Restart {
		steps = append(steps, todo{Name: "remove", Skip: "strategy restart removes nothing"})
	} else {
		steps = append(steps, todo{Name: "remove", Files: files})
	}
	return append(steps, todo{Name: "start"}, todo{Name: "verify"})
}

// verifyRotation waits for a clean start and checks the certificates against the backup's.
// A first start that fails on a listener cache from an older CA is restarted once more.
func (j *Job) verifyRotation(ctx context.Context, final bool) (string, error) {
	err := j.settle(ctx, j.j.ContainerID, j.logsSince())
	if err == errUnknownAuthority && !final {
		j.insertAfter("", todo{Name: "second-start"}, todo{Name: "verify", Final: true})
		return "the start failed with x509: certificate signed by unknown authority: Rancher used the kubeconfig of the old CA, which k3s rewrote during that start; a second start follows", nil
	}
	if err != nil {
		return "", err
	}
	before, err := treeOfBackup(j.j.Backup)
	if err != nil {
		return "", fmt.Errorf("read the certificates before from the backup: %w", err)
	}
	after, err := readTree(ctx, j.rot.eng, j.c)
	if err != nil {
		return "", err
	}
	before, after = before.inUse(j.c.Profile), after.inUse(j.c.Profile)
	j.set(func(jr *journal) { jr.NotAfterAfter = after.notAfter() })
	if err := checkTree(before, after, j.j.Strategy, j.c.Profile, time.Now()); err != nil {
		return "", err
	}
	var details []string
	if checksServing(j.c.Profile, j.j.Strategy) {
		served, err := j.checkServing(ctx, time.Now())
		if err != nil {
			return "", err
		}
		details = append(details, served)
	}
	details = append(details, fmt.Sprintf("running, no x509 errors, %d leaves renewed and signed by the current CAs", len(after.leaves())))
	secrets, err := j.verifySecrets(ctx)
	if err != nil {
		return "", err
	}
	if secrets != "" {
		details = append(details, secrets)
	}
	return strings.Join(details, "; "), nil
}

func isUnreachable(err error) bool { return readerr.ReasonOf(err) == readerr.APIUnreachable }
