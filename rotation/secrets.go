package rotation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Rancher's own certificates kept as secrets (rancher.InClusterCerts) are renewed as the field
// fix renews them: the secret is deleted (the CA that signs it kept) and the container
// restarted, and the owner issues it anew at its start. The job backs each up first, as the API
// server returned it, in the same archive as the files, and puts back what did not come back.

// secretPlan is what preflight plans for the in-cluster certificates.
type secretPlan struct {
	secrets  []string          // namespace/name, to delete
	webhooks []string          // admission configurations deleted with them
	why      map[string]string // by namespace/name
	notAfter map[string]string // of each secret's tls.crt, by namespace/name/tls.crt
	objects  map[string][]byte // archive entry: the object as the API server returned it
	note     string            // why auto planned none although it looked
}

// certPath names a secret's certificate as the exporter's metrics do.
func certPath(key string) string { return key + "/tls.crt" }

// planSecrets plans the secrets asked for and, for strategy auto, every rotatable one that is
// due and whose owner will not renew it in time; it reads each (and the admission configuration
// deleted with it) for the backup. Asked-for secrets that cannot be read fail the plan: nothing
// is deleted without its backup.
func (j *Job) planSecrets(ctx context.Context, asked []string, auto bool, now time.Time) (secretPlan, error) {
	plan := secretPlan{why: map[string]string{}, notAfter: map[string]string{}, objects: map[string][]byte{}}
	candidates := slices.Clone(asked)
	if auto {
		if j.c.State != container.StateRunning {
			plan.note = fmt.Sprintf("the cluster's secrets are not read while the container is %s", j.c.State)
		} else {
			for _, key := range rancher.RotatableSecrets() {
				if !slices.Contains(candidates, key) {
					candidates = append(candidates, key)
				}
			}
		}
	}
	if len(candidates) == 0 || plan.note != "" && len(asked) == 0 {
		return plan, nil
	}
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, true)
	if err != nil {
		return plan.unread(asked, err)
	}
	p := j.c.Profile
	for _, key := range candidates {
		row, _ := rancher.InClusterCert(key)
		o := cluster.Secret(row.Namespace, row.Name)
		raw, found, err := client.Get(ctx, o)
		isAsked := slices.Contains(asked, key)
		switch {
		case err != nil:
			return plan.unread(asked, err)
		case !found && isAsked:
			return plan, fmt.Errorf("secret %s is not in the cluster of container %s", key, j.c.Name)
		case !found:
			continue
		}
		cert, err := secretCert(key, raw)
		switch {
		case err != nil && isAsked:
			return plan, err
		case err != nil:
			continue // auto leaves what it cannot judge to the operator
		}
		why := "asked for; it " + expiry(cert.NotAfter, now)
		if !isAsked {
			left := cert.NotAfter.Sub(now)
			if left >= dueWithin || !row.OwnerLate(p, left) {
				continue
			}
			why = fmt.Sprintf("it %s and %s", expiry(cert.NotAfter, now), ownerSays(row, p))
		}
		plan.secrets = append(plan.secrets, key)
		plan.why[key] = why + ": deleted for " + row.Owner + " to issue it anew at the restart, signed by " + row.IssuedBy
		plan.notAfter[certPath(key)] = cert.NotAfter.UTC().Format(time.RFC3339)
		plan.objects[entryOf(o)] = raw
		if name := admissionOf(row, p); name != "" && !slices.Contains(plan.webhooks, name) {
			w := cluster.MutatingWebhook(name)
			raw, found, err := client.Get(ctx, w)
			if err != nil {
				return plan.unread(asked, err)
			}
			if found {
				plan.webhooks = append(plan.webhooks, name)
				plan.objects[entryOf(w)] = raw
			}
		}
	}
	return plan, nil
}

// unread is the plan when the cluster's secrets could not be read: an error for secrets asked
// for, a note for auto.
func (plan secretPlan) unread(asked []string, err error) (secretPlan, error) {
	if len(asked) > 0 {
		return plan, fmt.Errorf("cannot read the secrets asked for, to back them up: %w", err)
	}
	return secretPlan{note: fmt.Sprintf("the cluster's secrets could not be read (%v): none planned", err)}, nil
}

func admissionOf(row rancher.InCluster, p rancher.Profile) string {
	if row.Admission == nil {
		return ""
	}
	return row.Admission(p)
}

// ownerSays says why the owner will not renew it in time.
func ownerSays(row rancher.InCluster, p rancher.Profile) string {
	w := row.RenewWithin(p)
	if w == 0 {
		return fmt.Sprintf("%s of %s never renews it", row.Owner, describe(p))
	}
	return fmt.Sprintf("%s renews it %d days before expiry and has not", row.Owner, int(w/day))
}

const day = 24 * time.Hour

func expiry(notAfter, now time.Time) string {
	if !notAfter.After(now) {
		return "expired " + notAfter.UTC().Format(time.RFC3339)
	}
	return "expires " + notAfter.UTC().Format(time.RFC3339)
}

// secretCert parses the certificate of a secret as the API server returned it.
func secretCert(key string, raw []byte) (*x509.Certificate, error) {
	var s struct {
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	return certs.Parse(certPath(key), s.Data["tls.crt"])
}

// deleteObjects deletes the secrets and admission configurations of the plan, waiting up to
// wait for the API server to answer; the serving secret it accepts expired.
func (j *Job) deleteObjects(ctx context.Context, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		detail, err := j.tryDeleteObjects(ctx)
		if err == nil || !isUnreachable(err) || !time.Now().Before(deadline) {
			return detail, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(j.poll()):
		}
	}
}

func (j *Job) tryDeleteObjects(ctx context.Context) (string, error) {
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, true)
	if err != nil {
		return "", err
	}
	var deleted, absent []string
	for _, o := range j.objects() {
		ok, err := client.Delete(ctx, o)
		if err != nil {
			return "", err
		}
		if ok {
			deleted = append(deleted, o.String())
		} else {
			absent = append(absent, o.String())
		}
	}
	detail := "deleted " + strings.Join(deleted, ", ") + " through the container's API server"
	if len(deleted) == 0 {
		detail = "nothing to delete"
	}
	if len(absent) > 0 {
		detail += "; " + strings.Join(absent, ", ") + " was not there"
	}
	return detail, nil
}

// objects are what the plan deletes: the secrets, then the admission configurations.
func (j *Job) objects() []cluster.Object {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []cluster.Object
	for _, key := range j.j.DeleteSecrets {
		ns, name, _ := strings.Cut(key, "/")
		out = append(out, cluster.Secret(ns, name))
	}
	for _, name := range j.j.DeleteWebhooks {
		out = append(out, cluster.MutatingWebhook(name))
	}
	return out
}

// inCluster are the planned secrets whose owner issues them anew: all but the serving secret,
// which k3s writes from the files.
func (j *Job) inCluster() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, key := range j.j.DeleteSecrets {
		if key != servingSecretName() {
			out = append(out, key)
		}
	}
	return out
}
