package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rancher-webhook (from 2.5) as each release runs it, from rancher/webhook at the version the
// release's package/Dockerfile names (CATTLE_RANCHER_WEBHOOK_MIN_VERSION: 0.1.x on 2.5, 0.2.0 on
// 2.6.0):
//   - its certificate cattle-system/cattle-webhook-tls is issued by dynamiclistener when missing,
//     signed by cattle-webhook-ca, which is kept (v0.1.0 pkg/server/server.go:22-23, 215-227);
//     one year and never renewed before 2.5.12 / 2.6.3 (rancher#35068, rancher/webhook#58), ten
//     years and renewed 30 days ahead after (c85c8d7f; dynamiclistener v0.3.1 listener.go:84-85);
//   - 15 seconds after its start it applies the ValidatingWebhookConfiguration and the
//     MutatingWebhookConfiguration rancher.cattle.io with its CA (server.go:61-66 of v0.1.0);
//   - from v0.2.0 (2.6.0) the mutating one takes the creation of every secret, with
//     failurePolicy Fail (v0.2.0 server.go:239-292): while the webhook cannot serve — its
//     certificate expired or gone — no secret can be created, its own new certificate included;
//     hence the field fix deletes that configuration too (rancher/docs#3712).
const (
	webhookNone   = "none"
	webhookNever  = "never"
	webhookRenews = "renew"

	webhookConfig     = "rancher.cattle.io"
	webhookApplyDelay = 15 * time.Second
)

// webhookRenewWindow is how close to expiry a renewing webhook re-issues its certificate.
const webhookRenewWindow = 30 * day

// webhookStoreFile holds the webhook configurations, in the datastore as the secrets are.
const webhookStoreFile = "k3s/server/db/mutatingwebhookconfigurations.json"

// webhookStore keeps the MutatingWebhookConfigurations by name.
type webhookStore = objectStore[admissionv1.MutatingWebhookConfiguration]

// errRefused is a creation the admission webhook refused.
var errRefused = errors.New("admission refused")

// admit is the API server's admission of a secret created: from webhook v0.2.0 the mutating
// configuration sends it to the webhook, which must serve with a valid certificate.
func (k *k3s) admit(s secret, stored map[string]secret, now time.Time) error {
	c, ok := k.webhooks.get(webhookConfig)
	if !ok || !takesSecrets(c) {
		return nil
	}
	webhook, found := stored[uiNamespace+"/cattle-webhook-tls"]
	cert, err := firstCert(webhook.Data[corev1.TLSCertKey])
	switch {
	case !found || err != nil:
		return fmt.Errorf("%w: Internal error occurred: failed calling webhook %q: Post \"https://rancher-webhook.cattle-system.svc:443/v1/webhook/mutation?timeout=10s\": dial tcp: connect: connection refused (creating secret %s/%s)", errRefused, webhookConfig, s.Namespace, s.Name)
	case now.After(cert.NotAfter):
		return fmt.Errorf("%w: Internal error occurred: failed calling webhook %q: Post \"https://rancher-webhook.cattle-system.svc:443/v1/webhook/mutation?timeout=10s\": x509: certificate has expired or is not yet valid: current time %s is after %s (creating secret %s/%s)",
			errRefused, webhookConfig, now.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), s.Namespace, s.Name)
	}
	return nil
}

func takesSecrets(c admissionv1.MutatingWebhookConfiguration) bool {
	for _, w := range c.Webhooks {
		for _, r := range w.Rules {
			for _, res := range r.Resources {
				if res == "secrets" {
					return true
				}
			}
		}
	}
	return false
}

// startWebhook is the webhook pod's start: the pair of the install on the first start (its
// configuration applied once the install has written everything: installWebhookConfig), then
// its certificate issued when missing or renewed where the release renews it, and its
// configuration applied 15 seconds later (applyWebhookConfigLater). With SIM_WEBHOOK_DOWN the pod does not start
// after the install (its image missing in an air-gapped install: rancher#36892).
func (k *k3s) startWebhook() error {
	if k.cfg.webhook == webhookNone {
		return nil
	}
	if k.fresh {
		notAfter := k.now.Add(time.Duration(k.cfg.webhookDays) * day)
		return k.issuePair("cattle-webhook-ca", "cattle-webhook-tls", webhookSANs, notAfter.Add(-leafLife), notAfter)
	}
	if k.cfg.webhookDown {
		k.log.line("ERRO", "rancher-webhook: Back-off pulling image \"rancher/rancher-webhook\": the pod does not start")
		return nil
	}
	life := leafLife
	if k.cfg.webhook == webhookRenews {
		life = 10 * 365 * day
	}
	s, ok := k.store.get(uiNamespace, "cattle-webhook-tls")
	cert, err := firstCert(s.Data[corev1.TLSCertKey])
	switch {
	case !ok:
		k.log.rancher("rancher-webhook: issuing certificate cattle-system/cattle-webhook-tls")
	case err == nil && (k.cfg.webhook != webhookRenews || cert.NotAfter.Sub(k.now) >= webhookRenewWindow):
		return nil
	default:
		k.log.rancher("Renewing webhook certificate cattle-system/cattle-webhook-tls")
	}
	if err := k.issuePair("cattle-webhook-ca", "cattle-webhook-tls", webhookSANs, k.now, k.now.Add(life)); err != nil {
		if errors.Is(err, errRefused) {
			k.log.line("ERRO", "rancher-webhook: store cattle-system/cattle-webhook-tls: %v", err)
			return nil
		}
		return err
	}
	return nil
}

// webhookSANs: the webhook is reached through its Service's name.
var webhookSANs = leafSpec{dns: []string{"rancher-webhook.cattle-system.svc"}}

// applyWebhookConfigLater applies the configuration 15 seconds after the start, as the webhook
// does once its caches are primed, when it runs and has its certificate.
func (k *k3s) applyWebhookConfigLater(done <-chan struct{}) {
	if k.cfg.webhook == webhookNone || k.cfg.webhookDown || k.fresh {
		return
	}
	go func() {
		select {
		case <-done:
			return
		case <-time.After(webhookApplyDelay):
		}
		if _, ok := k.store.get(uiNamespace, "cattle-webhook-tls"); !ok {
			return
		}
		k.log.rancher("rancher-webhook: Sleeping for 15 seconds then applying webhook config: applied %s", webhookConfig)
		if err := k.applyWebhookConfig(); err != nil {
			k.log.line("ERRO", "rancher-webhook: apply %s: %v", webhookConfig, err)
		}
	}()
}

// installWebhookConfig applies the configuration at the end of the install, a year ago, when
// the webhook served.
func (k *k3s) installWebhookConfig() error {
	if !k.fresh || k.cfg.webhook == webhookNone {
		return nil
	}
	return k.applyWebhookConfig()
}

// applyWebhookConfig writes the MutatingWebhookConfiguration with the CA's certificate: the
// v0.1 of 2.5 for fleetworkspaces, from v0.2.0 (2.6) for secrets too.
func (k *k3s) applyWebhookConfig() error {
	ca, _ := k.store.get(uiNamespace, "cattle-webhook-ca")
	resources := []string{"fleetworkspaces"}
	if !releaseOf(os.Getenv("CATTLE_SERVER_VERSION")).before(2, 6, 0) {
		resources = append(resources, "secrets")
	}
	path, port := "/v1/webhook/mutation", int32(443)
	fail, none := admissionv1.Fail, admissionv1.SideEffectClassNoneOnDryRun
	c := admissionv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{Kind: "MutatingWebhookConfiguration", APIVersion: "admissionregistration.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: webhookConfig},
		Webhooks: []admissionv1.MutatingWebhook{{Name: webhookConfig,
			ClientConfig: admissionv1.WebhookClientConfig{CABundle: ca.Data[corev1.TLSCertKey],
				Service: &admissionv1.ServiceReference{Namespace: uiNamespace, Name: "rancher-webhook", Path: &path, Port: &port}},
			Rules: []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule: admissionv1.Rule{APIGroups: []string{"", "management.cattle.io"}, APIVersions: []string{"v1", "v3"}, Resources: resources}}},
			FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1", "v1beta1"}}},
	}
	return k.webhooks.update(func(all map[string]admissionv1.MutatingWebhookConfiguration) (bool, error) {
		if old, ok := all[webhookConfig]; ok {
			c.UID, c.CreationTimestamp = old.UID, old.CreationTimestamp
		} else {
			c.UID, c.CreationTimestamp = newUID(), metav1.Now()
		}
		c.ResourceVersion = fmt.Sprint(time.Now().UnixNano())
		all[webhookConfig] = c
		return true, nil
	})
}
