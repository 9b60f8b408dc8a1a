package main

import (
	"crypto/rand"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Rancher's own certificates live as secrets of the embedded cluster (cattle-system): the UI
// CA and certificate (ui.go), from 2.5 the webhook's CA and serving certificate, and from 2.5.7
// the internal listener's. From 2.5.12 / 2.6.3 the webhook renews its certificate; before, it
// lives one year and nothing renews it (rancher#35068, rancher/webhook#58).
const (
	webhookNone   = "none"
	webhookNever  = "never"
	webhookRenews = "renew"
)

// webhookRenewWindow is how close to expiry a renewing webhook re-issues its certificate.
const webhookRenewWindow = 30 * day

// installSecrets writes, on the first start, the secrets the install wrote a year ago; later
// starts renew the webhook's certificate where the release does.
func (k *k3s) installSecrets() error {
	if k.fresh {
		issued := k.notAfter.Add(-leafLife)
		pairs := [][2]string{}
		if k.cfg.webhook != webhookNone {
			pairs = append(pairs, [2]string{"cattle-webhook-ca", "cattle-webhook-tls"})
		}
		if k.cfg.internal {
			pairs = append(pairs, [2]string{"tls-rancher-internal-ca", "tls-rancher-internal"})
		}
		for _, p := range pairs {
			if err := k.issuePair(p[0], p[1], issued, k.notAfter); err != nil {
				return err
			}
		}
		if err := k.installTokens(); err != nil {
			return err
		}
		return k.installHelmReleases()
	}
	if k.cfg.webhook != webhookRenews {
		return nil
	}
	s, ok := k.store.get(uiNamespace, "cattle-webhook-tls")
	if cert, err := firstCert(s.Data[corev1.TLSCertKey]); ok && err == nil && cert.NotAfter.Sub(k.now) >= webhookRenewWindow {
		return nil
	}
	k.log.rancher("Renewing webhook certificate cattle-system/cattle-webhook-tls")
	return k.issuePair("cattle-webhook-ca", "cattle-webhook-tls", k.now, k.now.Add(leafLife))
}

// issuePair writes a CA secret (kept when it exists) and a serving certificate it signs.
func (k *k3s) issuePair(caName, certName string, notBefore, notAfter time.Time) error {
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
	spec := leafSpec{cn: "dynamic", orgs: []string{"dynamic"}, server: true, dns: []string{certName + ".cattle-system.svc"}}
	cert, err := newLeaf(spec, key.Public(), ca, caKey, notBefore, notAfter)
	if err != nil {
		return err
	}
	return k.store.put(newSecret(uiNamespace, certName, map[string][]byte{corev1.TLSCertKey: encodeCerts(cert), corev1.TLSPrivateKeyKey: encodeKey(key)}))
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
