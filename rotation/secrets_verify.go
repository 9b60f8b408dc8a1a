package rotation

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

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
