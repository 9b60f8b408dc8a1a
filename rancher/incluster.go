package rancher

import (
	"fmt"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

// InCluster is a certificate a single-node server's embedded cluster keeps as a secret, and what
// its owner does with it, per release: whether and how long before expiry the owner renews it,
// whether it issues it again when it is missing, and whether a rotation may delete it for the
// owner to issue anew. Each row cites the owner's source at the tags the releases ship.
type InCluster struct {
	Namespace, Name string
	Owner           string
	CA              bool
	// renewWithin is how long before expiry the owner renews it on a release; 0: never.
	renewWithin func(p Profile) time.Duration
	// Reissued: the owner issues it again when it is missing, at the container's next start.
	Reissued bool
	// Rotatable: a rotation may delete it for the owner to issue anew (its CA is kept, so that
	// what trusts the CA trusts the new certificate). Never a CA: the agents pin cattle-ca.
	Rotatable bool
	// IssuedBy is the secret (namespace/name) of the CA that signs it.
	IssuedBy string
	// Admission is the MutatingWebhookConfiguration deleted with it on a release where that
	// configuration sends every secret created to the webhook: with the webhook's certificate
	// gone or expired the webhook could not create its own (rancher/webhook v0.2.0
	// pkg/server/server.go:239-292; rancher/docs#3712). The webhook applies it again at its start.
	Admission func(p Profile) string
	// NotRotatable says why a rotation does not delete it, when it does not.
	NotRotatable string
	Source       string
}

// Key is namespace/name.
func (c InCluster) Key() string { return ObjectKey{c.Namespace, c.Name}.String() }

// RenewWithin is how long before expiry the owner renews it on the profile's release; 0: never.
func (c InCluster) RenewWithin(p Profile) time.Duration {
	if c.renewWithin == nil {
		return 0
	}
	return c.renewWithin(p)
}

// OwnerLate tells whether the owner should have renewed a certificate that expires in left:
// past its renewal point by more than the owner's grace (a dynamiclistener owner looks every 6
// hours), or it never renews.
func (c InCluster) OwnerLate(p Profile, left time.Duration) bool {
	return !Classification{RenewWithin: c.RenewWithin(p)}.OwnerOnTime(left)
}

// webhookRenews: the rancher-webhook of 2.5.12 and 2.6.3 on (rancher-webhook v0.1.4 / v0.2.2,
// rancher/webhook c85c8d7f, CATTLE_RANCHER_WEBHOOK_MIN_VERSION 0.1.300 / 1.0.2+up0.2.2 in
// rancher/rancher v2.5.12 / v2.6.3 package/Dockerfile) issues its certificate for ten years and
// runs dynamiclistener v0.3.1, which renews it within 30 days of expiry (listener.go:84-85);
// before, one year and never renewed (rancher/rancher#35068, rancher/webhook#58).
func webhookRenews(p Profile) time.Duration {
	r, ok := parseRelease(p.Rancher)
	if !ok || r.less(release{2, 5, 12}) || r[0] == 2 && r[1] == 6 && r.less(release{2, 6, 3}) {
		return 0
	}
	return 30 * day
}

// listenerRenews: Rancher's own dynamiclistener renews the internal listener's certificate within
// 30 days of expiry (v0.3.1, its default ExpirationDaysCheck), 90 from dynamiclistener v0.3.4
// (commit 8ebd77f), which Rancher 2.6.7 took (rancher/rancher v2.6.7 go.mod).
func listenerRenews(p Profile) time.Duration {
	r, ok := parseRelease(p.Rancher)
	if !ok {
		return 0
	}
	if r.less(release{2, 6, 7}) {
		return 30 * day
	}
	return 90 * day
}

// uiRenews: the UI certificate is renewed within the setting rotate-certs-if-expiring-in-days,
// 7 by default (rancher/rancher v2.5.7 pkg/settings/setting.go:85; v2.14.0 :126), the
// ExpirationDaysCheck of its listener (pkg/tls/tls.go, v2.6.3 :225-250).
func uiRenews(Profile) time.Duration { return 7 * day }

// InClusterCerts are the certificates a single-node server keeps as secrets.
var InClusterCerts = []InCluster{
	{Namespace: "cattle-system", Name: "cattle-webhook-tls", Owner: "rancher-webhook", renewWithin: webhookRenews, Reissued: true, Rotatable: true,
		IssuedBy: "cattle-system/cattle-webhook-ca", Admission: webhookAdmission,
		Source: "rancher/webhook v0.1.0 pkg/server/server.go:22-23, 215-227 (dynamiclistener server.ListenAndServe issues it when missing, signed by the kept CA); the field fix deletes it alone (rancher/docs#3637, #3712); c85c8d7f (v0.1.4, v0.2.2) ten years"},
	{Namespace: "cattle-system", Name: "cattle-webhook-ca", Owner: "rancher-webhook", CA: true, Reissued: true,
		NotRotatable: "the webhook's CA (ten years, never renewed): its certificate, cattle-system/cattle-webhook-tls, is what a rotation renews",
		Source:       "rancher/webhook v0.1.0 pkg/server/server.go:23: dynamiclistener's CA, ten years, never renewed; issued again only when missing"},
	{Namespace: "cattle-system", Name: "tls-rancher-internal", Owner: "Rancher", renewWithin: listenerRenews, Reissued: true, Rotatable: true,
		IssuedBy: "cattle-system/tls-rancher-internal-ca",
		Source:   "rancher/rancher v2.5.7 pkg/tls/tls.go:60-80, v2.14.0 :104-140 (server.ListenAndServe, CertName tls-rancher-internal)"},
	{Namespace: "cattle-system", Name: "tls-rancher-internal-ca", Owner: "Rancher", CA: true, Reissued: true,
		NotRotatable: "the internal listener's CA (ten years, never renewed): its certificate, cattle-system/tls-rancher-internal, is what a rotation renews",
		Source:       "rancher/rancher v2.14.0 pkg/tls/tls.go:110: dynamiclistener's CA, ten years, never renewed"},
	{Namespace: "cattle-system", Name: "serving-cert", Owner: "Rancher", renewWithin: uiRenews, Reissued: true, Rotatable: true,
		IssuedBy: "cattle-system/tls-rancher",
		Source:   "rancher/rancher v2.6.3 pkg/tls/tls.go:225-250 (CAName tls-rancher, ExpirationDaysCheck from rotate-certs-if-expiring-in-days)"},
	{Namespace: "cattle-system", Name: "tls-rancher", Owner: "Rancher", CA: true, Reissued: true,
		NotRotatable: "cattle-ca, which the downstream agents pin (cacerts): a new one disconnects every agent",
		Source:       "rancher/rancher v2.6.3 pkg/tls/tls.go:244: cattle-ca, which the agents pin (cacerts): a new one loses them, so never rotated"},
	// k3s renews it only when it starts (never on 2.4 to 2.5.7): an owner that waits for a
	// restart, not one that renews a running server's on time.
	{Namespace: "kube-system", Name: "k3s-serving", Owner: "k3s", Reissued: true,
		NotRotatable: "k3s's 6443 certificate, renewed with the k3s files: rotate without --secret (strategy leaf deletes this secret where k3s reloads it)",
		Source:       "k3s v1.17.2 pkg/cluster/https.go:76-80; renewed on start in its window from v1.19; rotated with the k3s files (dynamic-cert.json)"},
}

// WebhookAdmission is the MutatingWebhookConfiguration of rancher-webhook.
const WebhookAdmission = "rancher.cattle.io"

// webhookAdmission: from rancher-webhook v0.2.0 (Rancher 2.6.0, CATTLE_RANCHER_WEBHOOK_MIN_VERSION
// 1.0.0+up0.2.0) the mutating configuration takes every secret created (server.go:239-292,
// failurePolicy Fail); the v0.1 of 2.5 only fleetworkspaces.
func webhookAdmission(p Profile) string {
	if r, ok := parseRelease(p.Rancher); ok && !r.less(release{2, 6, 0}) {
		return WebhookAdmission
	}
	return ""
}

// CheckRotatable refuses a secret a rotation may not be asked to renew, saying why.
func CheckRotatable(key string) error {
	row, ok := InClusterCert(key)
	switch {
	case !ok:
		return fmt.Errorf("secret %s: not a certificate whose owner issues it again; a rotation renews %s", key, strings.Join(RotatableSecrets(), ", "))
	case !row.Rotatable:
		return fmt.Errorf("secret %s: %s", key, row.NotRotatable)
	}
	return nil
}

// InClusterCert finds the row of a secret, namespace/name.
func InClusterCert(key string) (InCluster, bool) {
	for _, c := range InClusterCerts {
		if c.Key() == key {
			return c, true
		}
	}
	return InCluster{}, false
}

// RotatableSecrets lists the secrets a rotation may be asked to renew.
func RotatableSecrets() []string {
	var out []string
	for _, c := range InClusterCerts {
		if c.Rotatable {
			out = append(out, c.Key())
		}
	}
	return out
}

// OwnerOnTime tells whether the owner of a certificate that expires in left renews it and is
// still on time to.
func (c Classification) OwnerOnTime(left time.Duration) bool {
	return c.RenewWithin > 0 && left >= c.RenewWithin-thresholds.Default.OwnerGraceOf()
}

// ClassifySecret tells what a certificate kept as a secret (path namespace/name/key) is to the
// profile's release: k3s's serving secret (which a rotation renews where k3s reloads it), or an
// in-cluster certificate, with its owner, how long before expiry the owner renews it, and whether
// a rotation has the owner issue it anew (the certificate under tls.crt; a CA copy under ca.crt
// is not what the owner renews).
func (p Profile) ClassifySecret(path string) Classification {
	parts := strings.Split(path, "/")
	if len(parts) != 3 {
		return Classification{Class: ClassInCluster}
	}
	key := parts[0] + "/" + parts[1]
	if key == ServingSecret.String() {
		c := Classification{Class: ClassServingSecret, Owner: "k3s"}
		if p.ServingFromSecret() {
			c.Rotation = RotationAlways
		}
		return c
	}
	row, ok := InClusterCert(key)
	if !ok {
		return Classification{Class: ClassInCluster}
	}
	c := Classification{Class: ClassInCluster, Owner: row.Owner}
	if parts[2] == "tls.crt" && !row.CA {
		c.RenewWithin = row.RenewWithin(p)
		if row.Rotatable {
			c.Rotation = RotationOwnerLate
		}
	}
	return c
}
