package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

const uiTimeout = 5 * time.Second

// uiTarget is where a Rancher UI is probed: the dial address, the name sent as SNI, and the
// URL reported as the path label.
type uiTarget struct {
	addr, serverName, url string
}

// uiTargetFromURL parses --rancher.url: the public hostname goes into SNI.
func uiTargetFromURL(raw string) (uiTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return uiTarget{}, readerr.Newf(readerr.NoUIAddress, "--rancher.url %q: want https://host[:port]", raw)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return uiTarget{addr: net.JoinHostPort(u.Hostname(), port), serverName: u.Hostname(), url: raw}, nil
}

func uiTargetFromAddr(addr string) uiTarget {
	host, _, _ := net.SplitHostPort(addr)
	return uiTarget{addr: addr, serverName: host, url: "https://" + addr}
}

// probeUI returns the leaf certificate the UI serves. It verifies nothing: the point is to
// read the certificate, also when it is self-signed or expired.
func probeUI(ctx context.Context, t uiTarget) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, uiTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, readerr.Newf(readerr.UIUnreachable, "connect %s: %v", t.url, err)
	}
	defer conn.Close()
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // reading the certificate, not trusting it
	if net.ParseIP(t.serverName) == nil {
		cfg.ServerName = t.serverName
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, readerr.Newf(readerr.UIHandshake, "TLS handshake with %s: %v", t.url, err)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, readerr.Newf(readerr.UIHandshake, "%s sent no certificate", t.url)
	}
	return certs[0], nil
}
