package main

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"sync/atomic"
	"time"
)

// uiDir stands in for the cattle-system secrets where Rancher keeps its own certificates.
const uiDir = "/var/lib/rancher/management-state/tls"

// uiRenewWindow is Rancher's default rotate-certs-if-expiring-in-days.
const uiRenewWindow = 7 * day

// ui is Rancher's own HTTPS certificate, issued by its cattle-ca and renewed before expiry.
type ui struct {
	cfg     config
	log     *logger
	ca      authority
	current atomic.Pointer[tls.Certificate]
}

func newUI(cfg config, log *logger, now time.Time) (*ui, error) {
	u := &ui{cfg: cfg, log: log}
	key, err := loadOrCreateKey(filepath.Join(uiDir, "cattle-ca.key"))
	if err != nil {
		return nil, err
	}
	caCert, err := readCert(filepath.Join(uiDir, "cattle-ca.crt"))
	if err != nil {
		return nil, err
	}
	if caCert == nil {
		if caCert, err = newCA("cattle-ca", key, now); err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(uiDir, "cattle-ca.crt"), encodeCerts(caCert), 0o644); err != nil {
			return nil, err
		}
	}
	u.ca = authority{caCert, key}
	return u, u.renewIfDue(now)
}

// renewIfDue loads the serving certificate, issuing it on first start and renewing it when it
// expires within the window.
func (u *ui) renewIfDue(now time.Time) error {
	crtFile, keyFile := filepath.Join(uiDir, "serving-cert.crt"), filepath.Join(uiDir, "serving-cert.key")
	key, err := loadOrCreateKey(keyFile)
	if err != nil {
		return err
	}
	cert, err := readCert(crtFile)
	if err != nil {
		return err
	}
	if cert == nil || cert.NotAfter.Sub(now) < uiRenewWindow {
		notAfter := now.Add(leafLife)
		if cert == nil {
			notAfter = now.Add(time.Duration(u.cfg.uiDays) * day)
		} else {
			u.log.rancher("Updating TLS secret for cattle-system/serving-cert")
		}
		spec := leafSpec{cn: "cattle", orgs: []string{"the-ranch"}, server: true, dns: []string{"localhost", "rancher.local"}}
		notBefore := now.Add(-time.Hour)
		if issued := notAfter.Add(-leafLife); issued.Before(notBefore) {
			notBefore = issued // a UI certificate that has already expired
		}
		if cert, err = newLeaf(spec, key.Public(), u.ca.cert, u.ca.key, notBefore, notAfter); err != nil {
			return err
		}
		if err := writeFile(crtFile, encodeCerts(cert, u.ca.cert), 0o644); err != nil {
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
