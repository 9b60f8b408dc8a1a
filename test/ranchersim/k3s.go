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

const k3sDir = "/var/lib/rancher/k3s"

// renewWindow is how close to expiry newer k3s re-issues a leaf at start.
const renewWindow = 90 * day

type caFile struct{ file, cn string }

// The CAs of embedded k3s, by file (relative to k3sDir) and CN prefix.
var cas = []caFile{
	{"server/tls/server-ca", "k3s-server-ca"},
	{"server/tls/client-ca", "k3s-client-ca"},
	{"server/tls/request-header-ca", "k3s-request-header-ca"},
	{"server/tls/etcd/server-ca", "etcd-server-ca"},
	{"server/tls/etcd/peer-ca", "etcd-peer-ca"},
}

type leafFile struct {
	file, ca string
	spec     leafSpec
}

var apiServerSANs = leafSpec{
	cn: "kube-apiserver", server: true,
	dns: []string{"kubernetes.default.svc", "kubernetes.default", "kubernetes", "localhost"},
	ips: []net.IP{net.ParseIP("10.43.0.1"), net.ParseIP("127.0.0.1")},
}

var leaves = []leafFile{
	{"server/tls/client-admin", "server/tls/client-ca", leafSpec{cn: "system:admin", orgs: []string{"system:masters"}}},
	{"server/tls/client-auth-proxy", "server/tls/request-header-ca", leafSpec{cn: "system:auth-proxy"}},
	{"server/tls/client-controller", "server/tls/client-ca", leafSpec{cn: "system:kube-controller-manager"}},
	{"server/tls/client-kube-apiserver", "server/tls/client-ca", leafSpec{cn: "kube-apiserver"}},
	{"server/tls/client-kube-proxy", "server/tls/client-ca", leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}},
	{"server/tls/client-scheduler", "server/tls/client-ca", leafSpec{cn: "system:kube-scheduler"}},
	{"server/tls/serving-kube-apiserver", "server/tls/server-ca", apiServerSANs},
	{"server/tls/etcd/server-client", "server/tls/etcd/server-ca", leafSpec{cn: "etcd-server", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
	{"server/tls/etcd/peer-server-client", "server/tls/etcd/peer-ca", leafSpec{cn: "etcd-peer", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
	{"server/tls/etcd/client", "server/tls/etcd/server-ca", leafSpec{cn: "etcd-client"}},
	{"agent/client-kubelet", "server/tls/client-ca", leafSpec{cn: "system:node:rancher-sim", orgs: []string{"system:nodes"}}},
	{"agent/serving-kubelet", "server/tls/server-ca", leafSpec{cn: "rancher-sim", server: true, dns: []string{"rancher-sim", "localhost"}}},
	{"agent/client-kube-proxy", "server/tls/client-ca", leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}},
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
	fresh    bool // first start: nothing on disk yet
	cas      map[string]authority
	notAfter time.Time // NotAfter of leaves issued on the first start
}

func (k *k3s) path(rel string) string { return filepath.Join(k.dir, rel) }

// ensureCAs loads every CA, creating the missing certificates from their keys (new or kept),
// with a new CN k3s-<name>-ca@<unix time> as k3s does.
func (k *k3s) ensureCAs() error {
	_, err := os.Stat(k.path(cas[0].file + ".key"))
	k.fresh = os.IsNotExist(err)
	notBefore := k.now
	if k.fresh {
		leafNotAfter := k.now.Add(time.Duration(k.cfg.leafDays) * day)
		k.notAfter = leafNotAfter
		if installed := leafNotAfter.Add(-leafLife); installed.Before(notBefore) {
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
	for _, name := range agentCACopies {
		data := encodeCerts(k.cas["server/tls/"+name].cert)
		if old, _ := os.ReadFile(k.path("agent/" + name + ".crt")); string(old) != string(data) {
			if err := writeFile(k.path("agent/"+name+".crt"), data, 0o644); err != nil {
				return err
			}
		}
	}
	return ensureRSAKey(k.path("server/tls/service.key"))
}

// ensureLeaves re-issues, from its existing key, every leaf that is missing, not signed by its
// current CA, or (in on-start mode) expiring within the renewal window.
func (k *k3s) ensureLeaves() error {
	for _, l := range leaves {
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
		case k.cfg.renewal == renewOnStart && cert.NotAfter.Sub(k.now) < renewWindow:
			why = "expires within 90 days"
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
		cert, err := readCert(k.path(l.file + ".crt"))
		if err == nil && cert != nil && (k.now.After(cert.NotAfter) || k.now.Before(cert.NotBefore)) {
			return k.path(l.file + ".crt"), cert
		}
	}
	return "", nil
}

// secret is the listener cache as rancher/dynamiclistener writes it.
type secret struct {
	Kind       string            `json:"kind"`
	APIVersion string            `json:"apiVersion"`
	Metadata   map[string]string `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string][]byte `json:"data"`
}

// checkDynamicCert makes sure the listener cache holds a valid serving certificate signed
// by the current server CA, re-issuing it from its key when needed. It reports false when the
// cache was signed by another CA: that start then fails with "unknown authority".
func (k *k3s) checkDynamicCert() (trusted bool, err error) {
	ca := k.cas["server/tls/server-ca"]
	file := k.path(dynamicCertFile)
	var s secret
	var cert *x509.Certificate
	data, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(data, &s)
	}
	if err == nil {
		cert, err = firstCert(s.Data["tls.crt"])
	}
	if err != nil { // missing or unreadable: write a new one
		s = secret{}
	} else if signedBy(cert, ca.cert) && k.now.Before(cert.NotAfter) {
		return true, nil
	}
	trusted = cert == nil || signedBy(cert, ca.cert)

	key, err := parseECKey(s.Data["tls.key"])
	if err != nil {
		if key, err = newECKey(); err != nil {
			return false, err
		}
	}
	spec := apiServerSANs
	spec.cn = "k3s"
	cert, err = newLeaf(spec, key.Public(), ca.cert, ca.key, k.now, k.now.Add(leafLife))
	if err != nil {
		return false, err
	}
	s = secret{
		Kind: "Secret", APIVersion: "v1", Type: "kubernetes.io/tls",
		Metadata: map[string]string{"name": "k3s-serving", "namespace": "kube-system"},
		Data:     map[string][]byte{"tls.crt": encodeCerts(cert), "tls.key": encodeKey(key)},
	}
	out, err := json.Marshal(s)
	if err != nil {
		return false, err
	}
	return trusted, writeFile(file, out, 0o600)
}
