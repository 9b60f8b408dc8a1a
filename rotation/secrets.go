package rotation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
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

// clusterEntries is the prefix of the archive's entries that are objects of the cluster, not
// files of the container: cluster/secrets/<namespace>/<name>.json,
// cluster/mutatingwebhookconfigurations/<name>.json.
const clusterEntries = "cluster/"

func entryOf(o cluster.Object) string {
	if o.Namespace != "" {
		return clusterEntries + o.Resource + "/" + o.Namespace + "/" + o.Name + ".json"
	}
	return clusterEntries + o.Resource + "/" + o.Name + ".json"
}

// objectOf is the object an archive entry holds, if it holds one.
func objectOf(entry string) (cluster.Object, bool) {
	rest, ok := strings.CutPrefix(entry, clusterEntries)
	if !ok || !strings.HasSuffix(rest, ".json") {
		return cluster.Object{}, false
	}
	parts := strings.Split(strings.TrimSuffix(rest, ".json"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "secrets":
		return cluster.Secret(parts[1], parts[2]), true
	case len(parts) == 2 && parts[0] == "mutatingwebhookconfigurations":
		return cluster.MutatingWebhook(parts[1]), true
	}
	return cluster.Object{}, false
}

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

// readObjects reads the planned objects again, for the backup of a job a dead process left
// before its backup was written: nothing was deleted yet.
func (j *Job) readObjects(ctx context.Context) (map[string][]byte, error) {
	keys, webhooks := j.inCluster(), j.j.DeleteWebhooks
	if len(keys)+len(webhooks) == 0 {
		return nil, nil
	}
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, true)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	objs := []cluster.Object{}
	for _, key := range keys {
		ns, name, _ := strings.Cut(key, "/")
		objs = append(objs, cluster.Secret(ns, name))
	}
	for _, name := range webhooks {
		objs = append(objs, cluster.MutatingWebhook(name))
	}
	for _, o := range objs {
		raw, found, err := client.Get(ctx, o)
		switch {
		case err != nil:
			return nil, err
		case !found:
			return nil, fmt.Errorf("%s is gone before its backup was written: rotate again", o)
		}
		out[entryOf(o)] = raw
	}
	return out, nil
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

// verifySecrets waits up to the owner wait for each deleted secret to be back — valid now,
// expiring later than before, signed by the current certificate of its CA — and for each
// admission configuration to be applied again.
func (j *Job) verifySecrets(ctx context.Context) (string, error) {
	keys := j.inCluster()
	if len(keys) == 0 {
		return "", nil
	}
	deadline := time.Now().Add(j.rot.cfg.OwnerWait)
	for {
		after, problems := j.checkSecrets(ctx, keys)
		if len(problems) == 0 {
			j.set(func(jr *journal) {
				for k, v := range after {
					jr.NotAfterAfter[k] = v
				}
			})
			return fmt.Sprintf("%s issued anew by their owners, valid until %s, signed by their CAs", strings.Join(keys, ", "), strings.Join(sortedValues(after), ", ")), nil
		}
		if !time.Now().Before(deadline) {
			return "", fmt.Errorf("after %s: %s", j.rot.cfg.OwnerWait, strings.Join(problems, "; "))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(max(j.poll(), time.Second)):
		}
	}
}

func (j *Job) checkSecrets(ctx context.Context, keys []string) (map[string]string, []string) {
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, false)
	if err != nil {
		return nil, []string{err.Error()}
	}
	now := time.Now()
	after := map[string]string{}
	var problems []string
	for _, key := range keys {
		row, _ := rancher.InClusterCert(key)
		cert, err := j.getCert(ctx, client, key)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		before, _ := time.Parse(time.RFC3339, j.j.NotAfterBefore[certPath(key)])
		ca, err := j.getCert(ctx, client, row.IssuedBy)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case now.Before(cert.NotBefore) || now.After(cert.NotAfter):
			problems = append(problems, fmt.Sprintf("%s is not valid now (%s to %s)", key, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)))
		case !cert.NotAfter.After(before):
			problems = append(problems, fmt.Sprintf("%s still expires %s", key, cert.NotAfter.UTC().Format(time.RFC3339)))
		case !signedByAny(cert, []*x509.Certificate{ca}):
			problems = append(problems, fmt.Sprintf("%s is not signed by the current %s", key, row.IssuedBy))
		default:
			after[certPath(key)] = cert.NotAfter.UTC().Format(time.RFC3339)
		}
	}
	for _, name := range j.j.DeleteWebhooks {
		if _, found, err := client.Get(ctx, cluster.MutatingWebhook(name)); err != nil || !found {
			problems = append(problems, fmt.Sprintf("the webhook has not applied its configuration %s again", name))
		}
	}
	return after, problems
}

func (j *Job) getCert(ctx context.Context, client ContainerAPI, key string) (*x509.Certificate, error) {
	ns, name, _ := strings.Cut(key, "/")
	raw, found, err := client.Get(ctx, cluster.Secret(ns, name))
	switch {
	case err != nil:
		return nil, err
	case !found:
		row, _ := rancher.InClusterCert(key)
		return nil, fmt.Errorf("%s has not been issued again by %s", key, row.Owner)
	}
	return secretCert(key, raw)
}

func sortedValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// putObjectsBack writes the cluster objects of the backup into the container's cluster through
// its API server (waiting for it as a start may take): all of them for a restore, only the
// missing ones after a failed rotation — what an owner issued since is kept. Secrets go first,
// so that the webhook has its certificate before its configuration sends secrets to it.
func (j *Job) putObjectsBack(ctx context.Context, onlyMissing bool) (string, error) {
	objs, err := backupObjects(j.j.Backup)
	if err != nil || len(objs) == 0 {
		return "the backup holds no object of the cluster", err
	}
	var client ContainerAPI
	deadline := time.Now().Add(j.rot.cfg.SettleTime + time.Minute)
	for {
		if client, err = j.rot.eng.API(ctx, j.j.ContainerID, true); err == nil {
			_, _, err = client.Get(ctx, objs[0].Object)
		}
		if err == nil || !isUnreachable(err) || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(j.poll()):
		}
	}
	if err != nil {
		return "", fmt.Errorf("the cluster's API server: %w", err)
	}
	var done, kept []string
	for _, o := range objs {
		if onlyMissing {
			if _, found, err := client.Get(ctx, o.Object); err != nil {
				return "", err
			} else if found {
				kept = append(kept, o.String())
				continue
			}
		}
		how, err := client.Put(ctx, o.Object, o.raw)
		if err != nil {
			return "", errors.Join(fmt.Errorf("put back %s", o), err)
		}
		done = append(done, o.String()+" "+how)
	}
	detail := "from " + j.j.Backup + ": " + strings.Join(done, ", ")
	if len(done) == 0 {
		detail = "nothing to put back"
	}
	if len(kept) > 0 {
		detail += "; kept " + strings.Join(kept, ", ") + ", issued again by its owner"
	}
	return detail, nil
}

type backedUp struct {
	cluster.Object
	raw []byte
}

// backupObjects reads the cluster objects of a backup, secrets first.
func backupObjects(file string) ([]backedUp, error) {
	entries, err := readEntries(file)
	if err != nil {
		return nil, err
	}
	var out []backedUp
	for name, data := range entries {
		if o, ok := objectOf(name); ok {
			out = append(out, backedUp{o, data})
		}
	}
	slices.SortFunc(out, func(a, b backedUp) int {
		if a.Resource != b.Resource {
			return strings.Compare(b.Resource, a.Resource) // secrets before mutatingwebhookconfigurations
		}
		return strings.Compare(a.String(), b.String())
	})
	return out, nil
}

// deletedObjects tells whether the job deleted objects of the cluster that the backup holds.
func (j *Job) deletedObjects() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.j.Backup == "" || len(j.j.DeleteSecrets)+len(j.j.DeleteWebhooks) == 0 {
		return false
	}
	for _, s := range j.j.Steps {
		if s.Name == StepDeleteSecret && s.Outcome != StepSkipped {
			return true
		}
	}
	return false
}
