package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// uiTimeout bounds the handshake; uiReadTimeout the whole read.
const (
	uiTimeout     = 5 * time.Second
	uiReadTimeout = 10 * time.Second
)

var uiSource = source{
	name:     model.SourceUI,
	classify: classAs(rancher.ClassUI, rancher.RotationNone),
	// A stopped container serves nothing; with --rancher.url the UI may be served elsewhere.
	reads: func(cfg DockerConfig, c rancher.Container) bool {
		return c.State == container.StateRunning || cfg.UIURL != ""
	},
	interval: func(cfg DockerConfig) time.Duration { return cfg.UIRefreshInterval },
	timeout:  uiReadTimeout,
	read:     readUI,
	reasons:  readerr.UIReads,
}

func readUI(ctx context.Context, env readEnv, c rancher.Container) readout {
	if env.urlConflict {
		return readout{err: readerr.Newf(readerr.NoUIAddress, "--rancher.url names one UI, but several Rancher containers are read: give --rancher.container")}
	}
	target, err := uiTargetOf(env.cfg, c)
	if err != nil {
		return readout{err: err}
	}
	chain, err := probeUI(ctx, target)
	if err != nil {
		return readout{path: target.url, err: err}
	}
	return readout{files: []rancher.File{{Path: target.url, Data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw})}}, chain: chain}
}

func uiTargetOf(cfg DockerConfig, c rancher.Container) (uiTarget, error) {
	if cfg.UIURL != "" {
		return uiTargetFromURL(cfg.UIURL)
	}
	if c.UIAddress == "" {
		return uiTarget{}, readerr.Newf(readerr.NoUIAddress, "container %s publishes no 443/tcp and has no IP address", c.Name)
	}
	return uiTargetFromAddr(c.UIAddress), nil
}

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

// probeUI returns the chain the UI serves, leaf first. It verifies nothing: the point is to
// read the certificate, also when it is self-signed or expired.
func probeUI(ctx context.Context, t uiTarget) ([]*x509.Certificate, error) {
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
	return certs, nil
}
