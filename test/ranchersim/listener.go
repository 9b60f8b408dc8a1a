package main

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The 6443 listener of k3s v0.8, a dynamiclistener at rancher/dynamiclistener c08b499d (vendored
// in rancher/k3s v0.8.0 as vendor/github.com/rancher/dynamiclistener): its certificate lives in
// the ListenerConfig object kube-system/tls-config (pkg/tls/storage.go), never in a file, and is
// minted again only when the stored one is missing or unparseable, when a name it is reached
// by is not in it, or when the stored CA is not the current server CA. Nothing renews it on
// expiry.

// listenerConfig is k3s.cattle.io/v1 ListenerConfig (pkg/apis/k3s.cattle.io/v1/types.go).
type listenerConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            listenerStatus `json:"status,omitempty"`
}

// listenerStatus is dynamiclistener's ListenerStatus (types.go:38-44).
type listenerStatus struct {
	Revision       string            `json:"revision,omitempty"`
	CACert         string            `json:"caCert,omitempty"`
	CAKey          string            `json:"caKey,omitempty"`
	GeneratedCerts map[string]string `json:"generatedCerts"`
	KnownIPs       map[string]bool   `json:"knownIps"`
}

// Where k3s keeps it (storage.go:13-16), and the name of its one certificate (server.go:49).
const (
	listenerNamespace = "kube-system"
	listenerName      = "tls-config"
	listenerCN        = "cattle"
)

// listener is the 6443 listener of one start.
type listener struct {
	store  *listenerStore
	ca     authority
	caPEM  string
	log    *logger
	issued time.Time // NotAfter of certificates minted at install, zero later

	mu      sync.Mutex
	ips     map[string]bool
	domains map[string]bool
	cert    *tls.Certificate
}

// newListener loads the stored certificate as NewServer and Update do (server.go:45-65,
// 193-261): the stored certificates are dropped when the stored CA is not the current server
// CA (storage.go:95-99); the certificate is dropped when the names the listener knows are not
// all in it; a missing certificate is minted for "localhost", the name Update asks for last
// (server.go:200-202).
func newListener(store *listenerStore, ca authority, log *logger, installNotAfter time.Time) (*listener, error) {
	l := &listener{store: store, ca: ca, caPEM: string(encodeCerts(ca.cert)), log: log, issued: installNotAfter,
		// KnownIPs: the API server's service IP (pkg/cli/server/server.go:156); no --tls-san.
		ips: map[string]bool{"10.43.0.1": true}, domains: map[string]bool{}}
	lc, found, err := store.get()
	if err != nil {
		return nil, err
	}
	status := lc.Status
	if status.CACert != l.caPEM {
		status.GeneratedCerts = nil
	}
	if cert, err := parseGenerated(status.GeneratedCerts[listenerCN]); err == nil {
		l.cert = cert
		leaf := cert.Leaf
		ips, domains := map[string]bool{}, map[string]bool{}
		for _, ip := range leaf.IPAddresses {
			ips[ip.String()] = true
		}
		for _, d := range leaf.DNSNames {
			domains[d] = true
		}
		if !subset(l.ips, ips) || !subset(l.domains, domains) {
			l.cert = nil
		}
		for ip := range ips {
			l.ips[ip] = true
		}
		for d := range domains {
			l.domains[d] = true
		}
	}
	if !found || l.cert == nil {
		if _, err := l.getCertificate(&tls.ClientHelloInfo{ServerName: "localhost"}); err != nil {
			return nil, err
		}
	}
	l.issued = time.Time{} // later certificates are minted now
	return l, nil
}

func subset(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// getCertificate serves the certificate, minting a new one for a server name it does not know
// yet (server.go:295-363), with a new key, valid 365 days from now (cert/cert.go:91-121).
func (l *listener) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hello.ServerName != "" && !l.domains[hello.ServerName] {
		l.cert = nil
		l.domains[hello.ServerName] = true
	}
	if l.cert != nil {
		return l.cert, nil
	}
	key, err := newECKey()
	if err != nil {
		return nil, err
	}
	notAfter := time.Now().Add(leafLife)
	if !l.issued.IsZero() {
		notAfter = l.issued // the install a year ago minted it with the leaves
	}
	spec := leafSpec{cn: listenerCN, orgs: l.ca.cert.Subject.Organization, server: true, dns: sortedKeys(l.domains)}
	for _, ip := range sortedKeys(l.ips) {
		spec.ips = append(spec.ips, net.ParseIP(ip))
	}
	cert, err := newLeaf(spec, key.Public(), l.ca.cert, l.ca.key, l.ca.cert.NotBefore, notAfter)
	if err != nil {
		return nil, err
	}
	l.cert = &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	l.log.info("Minted the 6443 listener certificate (CN %s, DNS %s, IP %s), valid until %s", listenerCN,
		strings.Join(cert.DNSNames, ","), strings.Join(sortedKeys(l.ips), ","), cert.NotAfter.UTC().Format(time.RFC3339))
	return l.cert, l.save(cert, key)
}

// save stores the certificate as server.save and storage.Set do (server.go:111-130,
// storage.go:46-85): a missing object is created without the CA (Get of a missing object is an
// empty status), so the next start mints again; an existing one is updated with the current CA.
// The simulated install stands for an install and its first restart: the object holds the CA,
// and the certificate minted then expires with the leaves.
func (l *listener) save(cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	lc, found, err := l.store.get()
	if err != nil {
		return err
	}
	if !found {
		lc = listenerConfig{TypeMeta: metav1.TypeMeta{APIVersion: "k3s.cattle.io/v1", Kind: "ListenerConfig"},
			ObjectMeta: metav1.ObjectMeta{Namespace: listenerNamespace, Name: listenerName, UID: newUID(), CreationTimestamp: metav1.Now()}}
	}
	lc.Status.GeneratedCerts = map[string]string{listenerCN: base64.StdEncoding.EncodeToString(cert.Raw) + "#" + base64.StdEncoding.EncodeToString(encodeKey(key))}
	if found || !l.issued.IsZero() {
		lc.Status.CACert, lc.Status.CAKey = l.caPEM, ""
	}
	return l.store.put(lc)
}

// cacheHandler learns the host a request names, and drops the certificate when it is new
// (server.go:365-388): the next handshake mints one that names it.
func (l *listener) cacheHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		l.mu.Lock()
		known := l.domains
		if net.ParseIP(host) != nil {
			known = l.ips
		}
		if !known[host] {
			known[host] = true
			l.cert = nil
		}
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// parseGenerated reads "base64 DER#base64 PEM key" (server.go:494-520).
func parseGenerated(s string) (*tls.Certificate, error) {
	certPart, keyPart, ok := strings.Cut(s, "#")
	if !ok {
		return nil, errors.New("unable to split cert into two parts")
	}
	der, err := base64.StdEncoding.DecodeString(certPart)
	if err != nil {
		return nil, err
	}
	keyPEM, err := base64.StdEncoding.DecodeString(keyPart)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no key")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("listener certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// listenerStoreFile stands, with the secrets, for the datastore that holds kube-system/tls-config
// (2.3 runs k3s on an etcd in management-state).
const listenerStoreFile = "k3s/server/db/listenerconfig.json"

// listenerStore keeps the one ListenerConfig k3s uses.
type listenerStore struct {
	file string
	mu   sync.Mutex
}

func (s *listenerStore) get() (listenerConfig, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lc listenerConfig
	data, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return lc, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &lc)
	}
	return lc, err == nil, err
}

func (s *listenerStore) put(lc listenerConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc.ResourceVersion = strconv.FormatInt(time.Now().UnixNano(), 10) // grows with every write
	data, err := json.Marshal(lc)
	if err != nil {
		return err
	}
	return writeFile(s.file, data, 0o600)
}
