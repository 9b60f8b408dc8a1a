package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Rancher's own certificates live as secrets of the embedded cluster (cattle-system): the UI
// CA and certificate (ui.go), from 2.5 the webhook's (webhook.go), and from 2.5.7 the internal
// listener's. installSecrets writes, on the first start, what the install wrote a year ago.
func (k *k3s) installSecrets() error {
	if !k.fresh {
		return nil
	}
	if err := k.installTokens(); err != nil {
		return err
	}
	return k.installHelmReleases()
}

// ensureInternalCert is the internal listener's certificate, cattle-system/tls-rancher-internal
// (from 2.5.7), as dynamiclistener issues it for the SANs Rancher configures: localhost,
// 127.0.0.1 and the ClusterIP of its Service (v2.13.8 pkg/tls/tls.go:117-139; v2.14.0
// pkg/tls/tls.go:117-128), each recorded in a listener.cattle.io/cn-<name> annotation. It is
// issued when missing (at the install, a year ago). An existing one is kept: on an upgrade into
// 2.14.0 it lacks the new rancher-internal Service's ClusterIP and keeps lacking it
// (rancher/rancher#54407: dynamiclistener's work queue processes the stored secret, not the
// updated one). From 2.14.1 Rancher deletes a secret whose annotations lack the ClusterIP before
// the listener starts, which then issues it again (#54427, backported as #54464; v2.14.1
// pkg/tls/tls.go ensureInternalCertSANs).
func (k *k3s) ensureInternalCert() error {
	if !k.cfg.internal {
		return nil
	}
	spec := leafSpec{dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}
	ip := k.internalIP()
	if ip != nil {
		spec.ips = append(spec.ips, ip)
	}
	stored, ok := k.store.get(uiNamespace, "tls-rancher-internal")
	cert, err := firstCert(stored.Data[corev1.TLSCertKey])
	switch {
	case !ok:
		issued := k.notAfter.Add(-leafLife)
		if !k.fresh {
			issued = k.now
		}
		return k.issuePair("tls-rancher-internal-ca", "tls-rancher-internal", spec, issued, issued.Add(leafLife))
	case err == nil && cert.NotAfter.Sub(k.now) < internalRenewWindow():
		k.log.rancher("Renewing certificate cattle-system/tls-rancher-internal, which expires %s", cert.NotAfter.UTC().Format(time.RFC3339))
		return k.issuePair("tls-rancher-internal-ca", "tls-rancher-internal", spec, k.now, k.now.Add(leafLife))
	case ip == nil || stored.Annotations[cnAnnotation(ip.String())] != "" || !atLeast(2, 14) || !fixedInternalSANs():
		return nil
	}
	k.log.rancher("tls: tls-rancher-internal certificate does not include ClusterIP %s, deleting to force regeneration", ip)
	if _, err := k.store.remove(uiNamespace, "tls-rancher-internal"); err != nil {
		return err
	}
	return k.issuePair("tls-rancher-internal-ca", "tls-rancher-internal", spec, k.now, k.now.Add(leafLife))
}

// internalRenewWindow is how close to expiry Rancher's listener renews tls-rancher-internal: 30
// days (dynamiclistener v0.3.1, its default), 90 from 2.6.7 (dynamiclistener v0.3.4, 8ebd77f).
// The real listener looks every 6 hours; the simulator at each start.
func internalRenewWindow() time.Duration {
	if releaseOf(os.Getenv("CATTLE_SERVER_VERSION")).before(2, 6, 7) {
		return 30 * day
	}
	return 90 * day
}

// fixedInternalSANs: the release deletes a tls-rancher-internal that lacks its ClusterIP
// (2.14.1 and later: rancher/rancher#54464).
func fixedInternalSANs() bool {
	return !releaseOf(os.Getenv("CATTLE_SERVER_VERSION")).before(2, 14, 1)
}

// cnAnnotation is where dynamiclistener records a name its certificate covers.
func cnAnnotation(name string) string { return "listener.cattle.io/cn-" + name }

// issuePair writes a CA secret (kept when it exists) and a serving certificate it signs for the
// names of spec, recorded in dynamiclistener's annotations. A certificate that is created (not
// replaced) passes admission, which the webhook may refuse (webhook.go).
func (k *k3s) issuePair(caName, certName string, spec leafSpec, notBefore, notAfter time.Time) error {
	stored, ok := k.store.get(uiNamespace, caName)
	ca, cerr := firstCert(stored.Data[corev1.TLSCertKey])
	caKey, kerr := parseECKey(stored.Data[corev1.TLSPrivateKeyKey])
	if !ok || cerr != nil || kerr != nil {
		var err error
		if caKey, err = newECKey(); err != nil {
			return err
		}
		if ca, err = newCA(fmt.Sprintf("dynamiclistener-ca@%d", notBefore.Unix()), caKey, notBefore); err != nil {
			return err
		}
		if err := k.store.put(newSecret(uiNamespace, caName, map[string][]byte{corev1.TLSCertKey: encodeCerts(ca), corev1.TLSPrivateKeyKey: encodeKey(caKey)})); err != nil {
			return err
		}
	}
	key, err := newECKey()
	if err != nil {
		return err
	}
	spec.cn, spec.orgs, spec.server = "dynamic", []string{"dynamic"}, true
	cert, err := newLeaf(spec, key.Public(), ca, caKey, notBefore, notAfter)
	if err != nil {
		return err
	}
	s := newSecret(uiNamespace, certName, map[string][]byte{corev1.TLSCertKey: encodeCerts(cert), corev1.TLSPrivateKeyKey: encodeKey(key)})
	s.Annotations = map[string]string{}
	for _, n := range spec.dns {
		s.Annotations[cnAnnotation(n)] = n
	}
	for _, ip := range spec.ips {
		s.Annotations[cnAnnotation(ip.String())] = ip.String()
	}
	return k.store.put(s)
}

// installTokens writes the service-account token secrets Kubernetes before 1.24 made for every
// service account: each holds the cluster's server CA as ca.crt.
func (k *k3s) installTokens() error {
	ca := encodeCerts(k.cas["server/tls/server-ca"].cert)
	for i, ns := range []string{"default", "kube-system", "cattle-system"}[:min(k.cfg.tokenSecrets, 3)] {
		s := newSecret(ns, fmt.Sprintf("default-token-%05d", 10000+i), map[string][]byte{
			corev1.ServiceAccountRootCAKey: ca, corev1.ServiceAccountNamespaceKey: []byte(ns), corev1.ServiceAccountTokenKey: []byte("eyJhbGciOiJSUzI1NiJ9.simulated"),
		})
		s.Type = corev1.SecretTypeServiceAccountToken
		if err := k.store.put(s); err != nil {
			return err
		}
	}
	return nil
}

// installHelmReleases writes the bulk a real cluster's secret list carries: Opaque helm
// release records, a kilobyte each, that hold no certificate.
func (k *k3s) installHelmReleases() error {
	var all []secret
	for i := 0; i < k.cfg.opaqueSecrets; i++ {
		blob := make([]byte, 1024)
		rand.Read(blob)
		s := newSecret("cattle-system", fmt.Sprintf("sh.helm.release.v1.rancher-webhook.v%d", i+1), map[string][]byte{"release": blob})
		s.Type = "helm.sh/release.v1"
		all = append(all, s)
	}
	return k.store.put(all...)
}
