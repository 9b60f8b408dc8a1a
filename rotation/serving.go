package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
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
	return rancher.ServingSecret.String()
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
