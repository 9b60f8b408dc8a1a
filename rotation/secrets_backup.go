package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
)

// The objects of the cluster a rotation deletes are kept in its backup archive beside the files,
// and put back from there: by a rollback what did not come back, by restore all of them.

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
