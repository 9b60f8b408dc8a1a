package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Before k3s v1.19 (Rancher 2.4 to 2.5.7) the 6443 listener reloads its certificate from the
// kube-system/k3s-serving secret at start, so a plan that removes the listener cache also
// deletes that secret, through the container's own API server: the only write the exporter
// ever makes to a cluster, and only from a rotation.

// deletesServingSecret tells whether a strategy must delete the secret on this release.
func deletesServingSecret(p rancher.Profile, s Strategy) bool {
	return p.ServingFromSecret() && (s == Leaf || s == AllCerts)
}

func servingSecretName() string {
	return rancher.ServingSecret.Namespace + "/" + rancher.ServingSecret.Name
}

// deleteServingSecret deletes the secret, accepting the expired serving certificate it is
// there to replace, and waits up to wait for the API server to answer.
func (j *Job) deleteServingSecret(ctx context.Context, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		detail, err := j.tryDeleteServingSecret(ctx)
		if err == nil || readerr.ReasonOf(err) != readerr.APIUnreachable || !time.Now().Before(deadline) {
			return detail, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(j.poll()):
		}
	}
}

func (j *Job) tryDeleteServingSecret(ctx context.Context) (string, error) {
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, true)
	if err != nil {
		return "", err
	}
	deleted, err := client.DeleteSecret(ctx, rancher.ServingSecret.Namespace, rancher.ServingSecret.Name)
	switch {
	case err != nil:
		return "", err
	case !deleted:
		return servingSecretName() + " was not there", nil
	}
	return fmt.Sprintf("deleted %s through the container's API server", servingSecretName()), nil
}

// checksServing tells whether a rotation must check what 6443 serves: where the listener does
// not take its certificate from the files the rotation renews (the ListenerConfig of 2.3, the
// secret of 2.4 to 2.5.7).
func checksServing(p rancher.Profile, s Strategy) bool {
	return p.ListenerConfig || deletesServingSecret(p, s)
}

// checkServing verifies the certificate the API server serves, as any client does (valid now,
// chained to the current server CA, the right name), and that it is not due any more: renewed
// when it was.
func (j *Job) checkServing(ctx context.Context, now time.Time) (string, error) {
	client, err := j.rot.eng.API(ctx, j.j.ContainerID, false)
	if err != nil {
		return "", err
	}
	served, err := client.ServingCertificate(ctx)
	if err != nil {
		return "", fmt.Errorf("6443: %w", err)
	}
	if served.NotAfter.Sub(now) < dueWithin {
		return "", fmt.Errorf("6443 still serves a certificate expiring %s", served.NotAfter.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("6443 serves a verified certificate valid until %s", served.NotAfter.UTC().Format(time.RFC3339)), nil
}
