package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// dataDir is Rancher's data directory, the volume of the image.
const dataDir = "/var/lib/rancher"

type caFile struct {
	file, cn string
	etcd     bool // only with embedded etcd
}

// The CAs of embedded k3s, by file (relative to the k3s directory) and CN prefix.
var cas = []caFile{
	{file: "server/tls/server-ca", cn: "k3s-server-ca"},
	{file: "server/tls/client-ca", cn: "k3s-client-ca"},
	{file: "server/tls/request-header-ca", cn: "k3s-request-header-ca"},
	{file: "server/tls/etcd/server-ca", cn: "etcd-server-ca", etcd: true},
	{file: "server/tls/etcd/peer-ca", cn: "etcd-peer-ca", etcd: true},
}

type leafFile struct {
	file, ca    string
	spec        leafSpec
	etcd, agent bool // only with embedded etcd, only with the agent
}

var apiServerSANs = leafSpec{
	cn: "kube-apiserver", server: true,
	dns: []string{"kubernetes.default.svc", "kubernetes.default", "kubernetes", "localhost"},
	ips: []net.IP{net.ParseIP("10.43.0.1"), net.ParseIP("127.0.0.1")},
}

var leaves = []leafFile{
	{file: "server/tls/client-admin", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:admin", orgs: []string{"system:masters"}}},
	{file: "server/tls/client-auth-proxy", ca: "server/tls/request-header-ca", spec: leafSpec{cn: "system:auth-proxy"}},
	{file: "server/tls/client-controller", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-controller-manager"}},
	{file: "server/tls/client-kube-apiserver", ca: "server/tls/client-ca", spec: leafSpec{cn: "kube-apiserver"}},
	{file: "server/tls/client-kube-proxy", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}},
	{file: "server/tls/client-scheduler", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-scheduler"}},
	{file: "server/tls/serving-kube-apiserver", ca: "server/tls/server-ca", spec: apiServerSANs},
	{file: "server/tls/etcd/server-client", ca: "server/tls/etcd/server-ca", etcd: true, spec: leafSpec{cn: "etcd-server", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
	{file: "server/tls/etcd/peer-server-client", ca: "server/tls/etcd/peer-ca", etcd: true, spec: leafSpec{cn: "etcd-peer", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
	{file: "server/tls/etcd/client", ca: "server/tls/etcd/server-ca", etcd: true, spec: leafSpec{cn: "etcd-client"}},
	{file: "agent/client-kubelet", ca: "server/tls/client-ca", agent: true, spec: leafSpec{cn: "system:node:local-node", orgs: []string{"system:nodes"}}},
	{file: "agent/serving-kubelet", ca: "server/tls/server-ca", agent: true, spec: leafSpec{cn: "local-node", server: true, dns: []string{"local-node", "localhost"}}},
	{file: "agent/client-kube-proxy", ca: "server/tls/client-ca", agent: true, spec: leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}},
}

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
	now      time.Time
	log      *logger
	store    *secretStore
	fresh    bool // first start: nothing on disk yet
	cas      map[string]authority
	notAfter time.Time // NotAfter of leaves issued on the first start
}

func (k *k3s) path(rel string) string { return filepath.Join(k.dir, rel) }

func (k *k3s) has(etcd, agent bool) bool { return (!etcd || k.cfg.etcd) && (!agent || k.cfg.agent) }

// ensureCAs loads every CA, creating the missing certificates from their keys (new or kept),
// with a new CN k3s-<name>-ca@<unix time> as k3s does.
func (k *k3s) ensureCAs() error {
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
		if !k.has(ca.etcd, false) {
			continue
		}
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
	if k.cfg.agent {
		for _, name := range agentCACopies {
			data := encodeCerts(k.cas["server/tls/"+name].cert)
			if old, _ := os.ReadFile(k.path("agent/" + name + ".crt")); string(old) != string(data) {
				if err := writeFile(k.path("agent/"+name+".crt"), data, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return ensureRSAKey(k.path("server/tls/service.key"))
}

// ensureLeaves re-issues, from its existing key, every leaf that is missing, not signed by its
// current CA, or (in on-start mode) expired or expiring within the renewal window.
func (k *k3s) ensureLeaves() error {
	for _, l := range leaves {
		if !k.has(l.etcd, l.agent) {
			continue
		}
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
	return nil
}

// expiredLeaf returns the first leaf that is not valid now, as the k3s TLS server refuses to
// start with it.
func (k *k3s) expiredLeaf() (string, *x509.Certificate) {
	for _, l := range leaves {
		if !k.has(l.etcd, l.agent) {
			continue
		}
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
	if err != nil && k.cfg.servingFromSecret {
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
	case k.cfg.servingFromSecret:
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
	if !k.fresh {
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
	if !k.cfg.servingSecret {
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
