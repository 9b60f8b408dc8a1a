package main

import (
	"crypto/tls"
	"errors"
	"sync/atomic"
	"time"
)

// Rancher keeps its own certificates as secrets of the embedded cluster: the CA cattle-ca in
// cattle-system/tls-rancher, the UI certificate in cattle-system/serving-cert.
const uiNamespace = "cattle-system"

// uiRenewWindow is Rancher's default rotate-certs-if-expiring-in-days.
const uiRenewWindow = 7 * day

// ui is Rancher's own HTTPS certificate, issued by its cattle-ca and renewed before expiry.
type ui struct {
	cfg     config
	log     *logger
	store   *secretStore
	ca      authority
	current atomic.Pointer[tls.Certificate]
	custom  bool // serving the operator's certificate from /etc/rancher/ssl
}

func newUI(cfg config, log *logger, store *secretStore, ssl sslConfig, now time.Time) (*ui, error) {
	u := &ui{cfg: cfg, log: log, store: store}
	stored, ok := store.get(uiNamespace, "tls-rancher")
	caCert, cerr := firstCert(stored.Data["tls.crt"])
	caKey, kerr := parseECKey(stored.Data["tls.key"])
	if !ok || cerr != nil || kerr != nil {
		var err error
		if caKey, err = newECKey(); err != nil {
			return nil, err
		}
		if caCert, err = newCA("cattle-ca", caKey, now); err != nil {
			return nil, err
		}
		if err := store.put(newSecret(uiNamespace, "tls-rancher", map[string][]byte{"tls.crt": encodeCerts(caCert), "tls.key": encodeKey(caKey)})); err != nil {
			return nil, err
		}
	}
	u.ca = authority{caCert, caKey}
	if ssl.custom != nil {
		// The operator's own certificate: served as mounted, never renewed by Rancher
		// (v2.9.0 pkg/tls/tls.go:276-281).
		log.rancher("Using the certificate in %s", customCertFile)
		u.custom = true
		u.current.Store(ssl.custom)
		return u, nil
	}
	return u, u.renewIfDue(now)
}

// renewIfDue loads the serving certificate, issuing it on first start and renewing it when it
// expires within the window.
func (u *ui) renewIfDue(now time.Time) error {
	if u.custom {
		return nil
	}
	stored, ok := u.store.get(uiNamespace, "serving-cert")
	cert, cerr := firstCert(stored.Data["tls.crt"])
	key, kerr := parseECKey(stored.Data["tls.key"])
	if !ok || cerr != nil || kerr != nil || cert.NotAfter.Sub(now) < uiRenewWindow {
		notAfter := now.Add(leafLife)
		if !ok {
			notAfter = now.Add(time.Duration(u.cfg.uiDays) * day)
		} else {
			u.log.rancher("Updating TLS secret for cattle-system/serving-cert")
		}
		if kerr != nil {
			var err error
			if key, err = newECKey(); err != nil {
				return err
			}
		}
		spec := leafSpec{cn: "cattle", orgs: []string{"the-ranch"}, server: true, dns: []string{"localhost", "rancher.local"}}
		notBefore := now.Add(-time.Hour)
		if issued := notAfter.Add(-leafLife); issued.Before(notBefore) {
			notBefore = issued // a UI certificate that has already expired
		}
		var err error
		if cert, err = newLeaf(spec, key.Public(), u.ca.cert, u.ca.key, notBefore, notAfter); err != nil {
			return err
		}
		if err := u.store.put(newSecret(uiNamespace, "serving-cert", map[string][]byte{"tls.crt": encodeCerts(cert, u.ca.cert), "tls.key": encodeKey(key)})); err != nil {
			return err
		}
	}
	u.current.Store(&tls.Certificate{
		Certificate: [][]byte{cert.Raw, u.ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        cert,
	})
	return nil
}

func (u *ui) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := u.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}
