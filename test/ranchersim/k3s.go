package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// dataDir is Rancher's data directory, the volume of the image.
const dataDir = "/var/lib/rancher"

// The agent keeps copies of the two CAs it trusts.
var agentCACopies = []string{"server-ca", "client-ca"}

const dynamicCertFile = "server/tls/dynamic-cert.json"

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// k3s reproduces the certificate handling of embedded k3s at start.
type k3s struct {
	dir      string
	cfg      config
	rel      k3sRelease
	now      time.Time
	log      *logger
	store    *secretStore
	webhooks *webhookStore
	services *serviceStore
	clusters clusterStore
	fresh    bool // first start: nothing on disk yet
	cas      map[string]authority
	notAfter time.Time // NotAfter of leaves issued on the first start
}

func (k *k3s) path(rel string) string { return filepath.Join(k.dir, rel) }

// leaves are the leaves this k3s writes: the server's, and the agent's when it runs.
func (k *k3s) leaves() []leafFile {
	out := k.rel.serverLeaves()
	if k.cfg.agent {
		out = append(out, k.rel.agentLeaves()...)
	}
	return out
}

// ensureCAs loads every CA, creating the missing certificates from their keys (new or kept),
// with a new CN k3s-<name>-ca@<unix time> as k3s does.
func (k *k3s) ensureCAs() error {
	cas := k.rel.cas()
	_, err := os.Stat(k.path(cas[0].file + ".key"))
	k.fresh = os.IsNotExist(err)
	notBefore := k.now
	if k.fresh {
		k.notAfter = k.now.Add(time.Duration(k.cfg.leafDays) * day)
		if installed := k.notAfter.Add(-leafLife); installed.Before(notBefore) {
			notBefore = installed
		}
	}
	k.cas = map[string]authority{}
	for _, ca := range cas {
		key, err := loadOrCreateKey(k.path(ca.file + ".key"))
		if err != nil {
			return err
		}
		cert, err := readCert(k.path(ca.file + ".crt"))
		if err != nil {
			return fmt.Errorf("%s.crt: %w", ca.file, err)
		}
		if cert == nil {
			cn := fmt.Sprintf("%s@%d", ca.cn, notBefore.Unix())
			if cert, err = newCA(cn, key, notBefore); err != nil {
				return err
			}
			if err := writeFile(k.path(ca.file+".crt"), encodeCerts(cert), 0o644); err != nil {
				return err
			}
			k.log.info("Created CA certificate %s.crt (%s)", ca.file, cn)
		}
		k.cas[ca.file] = authority{cert, key}
	}
	if k.rel.nochainCopies() {
		for _, name := range []string{"server-ca", "client-ca"} {
			if err := k.writeIfChanged("server/tls/"+name+".nochain.crt", encodeCerts(k.cas["server/tls/"+name].cert)); err != nil {
				return err
			}
		}
	}
	if k.cfg.agent {
		for _, name := range agentCACopies {
			if err := k.writeIfChanged("agent/"+name+".crt", encodeCerts(k.cas["server/tls/"+name].cert)); err != nil {
				return err
			}
		}
	}
	return ensureRSAKey(k.path("server/tls/service.key"))
}

// writeIfChanged writes a copy of a certificate when it differs from what the file holds.
func (k *k3s) writeIfChanged(rel string, data []byte) error {
	if old, _ := os.ReadFile(k.path(rel)); string(old) == string(data) {
		return nil
	}
	return writeFile(k.path(rel), data, 0o644)
}

// cleanUp deletes the leftovers this k3s removes at start.
func (k *k3s) cleanUp() error {
	for _, rel := range k.rel.cleanedUp() {
		if err := os.Remove(k.path(rel + ".crt")); err == nil {
			k.log.info("Removed legacy certificate %s.crt", rel)
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// ensureLeaves re-issues, from its existing key, every leaf that is missing, not signed by its
// current CA, or (in on-start mode) expired or expiring within the renewal window.
func (k *k3s) ensureLeaves() error {
	for _, l := range k.leaves() {
		ca := k.cas[l.ca]
		key, err := loadOrCreateKey(k.path(l.file + ".key"))
		if err != nil {
			return err
		}
		cert, err := readCert(k.path(l.file + ".crt"))
		if err != nil {
			return fmt.Errorf("%s.crt: %w", l.file, err)
		}
		why := ""
		switch {
		case cert == nil:
			why = "missing"
		case !signedBy(cert, ca.cert):
			why = "not signed by the current CA"
		case k.cfg.renewal == renewOnStart && cert.NotAfter.Sub(k.now) < k.cfg.window:
			why = fmt.Sprintf("expires within %d days", int(k.cfg.window/day))
		}
		if why == "" {
			continue
		}
		notAfter := k.now.Add(leafLife)
		if k.fresh {
			notAfter = k.notAfter
		}
		if cert, err = newLeaf(l.spec, key.Public(), ca.cert, ca.key, ca.cert.NotBefore, notAfter); err != nil {
			return err
		}
		if err := writeFile(k.path(l.file+".crt"), encodeCerts(cert, ca.cert), 0o644); err != nil {
			return err
		}
		if !k.fresh {
			k.log.info("Certificate %s.crt %s: re-issued, valid until %s", l.file, why, cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	for _, key := range k.rel.serverKeys() {
		if _, err := loadOrCreateKey(k.path(key)); err != nil {
			return err
		}
	}
	return nil
}

// expiredLeaf returns the first leaf that is not valid now, as the k3s TLS server refuses to
// start with it.
func (k *k3s) expiredLeaf() (string, *x509.Certificate) {
	for _, l := range k.leaves() {
		cert, err := readCert(k.path(l.file + ".crt"))
		if err == nil && cert != nil && (k.now.After(cert.NotAfter) || k.now.Before(cert.NotBefore)) {
			return k.path(l.file + ".crt"), cert
		}
	}
	return "", nil
}

// checkDynamicCert makes sure the listener cache holds the 6443 serving certificate, and
// reports why a start cannot reach its API server ("" when it can):
//   - a cache signed by another CA is rewritten, but this start fails on "unknown authority";
//   - where the listener reloads the certificate from kube-system/k3s-serving (k3s before
//     v1.19), a missing cache is restored from that secret and an expired certificate is
//     never renewed: every start fails on "certificate has expired";
//   - otherwise an expired certificate, or in on-start mode one inside the window, is renewed.
func (k *k3s) checkDynamicCert() (stuck string, err error) {
	ca := k.cas["server/tls/server-ca"]
	file := k.path(dynamicCertFile)
	s, cert, err := readSecretFile(file)
	if err != nil && k.rel.servingFromSecret {
		if stored, ok := k.store.get("kube-system", "k3s-serving"); ok {
			s = stored
			if cert, err = firstCert(s.Data["tls.crt"]); err == nil {
				k.log.info("Loaded serving certificate from kube-system/k3s-serving into %s", dynamicCertFile)
				if err := k.writeDynamicCert(s); err != nil {
					return "", err
				}
			}
		}
	}
	switch {
	case err != nil: // missing or unreadable: a new one
	case !signedBy(cert, ca.cert):
		if err := k.issueServing(s, ca); err != nil {
			return "", err
		}
		return "certificate signed by unknown authority", nil
	case k.rel.servingFromSecret:
		if !k.now.Before(cert.NotAfter) {
			return fmt.Sprintf("certificate has expired or is not yet valid: current time %s is after %s",
				k.now.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)), nil
		}
		return "", nil
	case !k.now.Before(cert.NotAfter), k.cfg.renewal == renewOnStart && cert.NotAfter.Sub(k.now) < k.cfg.window:
	default:
		return "", k.mirror(s)
	}
	return "", k.issueServing(s, ca)
}

// installServing issues the serving certificate on the first start, with the leaves: the
// install a year ago wrote it before anything could expire.
func (k *k3s) installServing() error {
	if !k.fresh || !k.rel.servingSecret {
		return nil
	}
	return k.issueServing(secret{}, k.cas["server/tls/server-ca"])
}

// issueServing writes a new serving certificate, from the key of the old cache when there is
// one, signed by the current server CA.
func (k *k3s) issueServing(old secret, ca authority) error {
	key, err := parseECKey(old.Data["tls.key"])
	if err != nil {
		if key, err = newECKey(); err != nil {
			return err
		}
	}
	spec := apiServerSANs
	spec.cn = "k3s"
	notBefore, notAfter := k.now, k.now.Add(leafLife)
	if k.fresh { // issued at install, with the leaves
		notBefore, notAfter = k.notAfter.Add(-leafLife), k.notAfter
	}
	cert, err := newLeaf(spec, key.Public(), ca.cert, ca.key, notBefore, notAfter)
	if err != nil {
		return err
	}
	s := newSecret("kube-system", "k3s-serving", map[string][]byte{"tls.crt": encodeCerts(cert), "tls.key": encodeKey(key)})
	if err := k.writeDynamicCert(s); err != nil {
		return err
	}
	return k.mirror(s)
}

func (k *k3s) writeDynamicCert(s secret) error {
	out, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFile(k.path(dynamicCertFile), out, 0o600)
}

// mirror keeps kube-system/k3s-serving equal to the cache, as the listener does.
func (k *k3s) mirror(s secret) error {
	if !k.rel.servingSecret {
		return nil
	}
	return k.store.put(s)
}

func readSecretFile(file string) (secret, *x509.Certificate, error) {
	var s secret
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err != nil {
		return secret{}, nil, err
	}
	cert, err := firstCert(s.Data["tls.crt"])
	return s, cert, err
}
