package rancher

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
)

// Agent TLS modes (the agent-tls-mode setting, Rancher 2.9 and later): strict trusts the cacerts
// setting only; system-store the operating system's store as well.
const (
	AgentTLSStrict      = "strict"
	AgentTLSSystemStore = "system-store"
)

// CACertsServed is what https://<server>/cacerts serves for a cacerts value, and what the
// agents' CATTLE_CA_CHECKSUM is the SHA-256 of: nothing when the value is blank, else the value
// with a newline added when it lacks one (rancher/rancher pkg/cacerts/handler.go; CAChecksum in
// pkg/systemtemplate).
func CACertsServed(value string) []byte {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	if !strings.HasSuffix(value, "\n") {
		value += "\n"
	}
	return []byte(value)
}

// CAChecksum is the lowercase hex SHA-256 agents pin for a cacerts value, "" when nothing is
// served (agents then check no checksum).
func CAChecksum(value string) string {
	served := CACertsServed(value)
	if served == nil {
		return ""
	}
	sum := sha256.Sum256(served)
	return hex.EncodeToString(sum[:])
}

// EffectiveAgentTLSMode is the mode agents run in: the setting's value, else its default; the
// system store on releases without the setting (before 2.9).
func EffectiveAgentTLSMode(found bool, value, def string) string {
	switch {
	case !found:
		return AgentTLSSystemStore
	case value != "":
		return value
	case def != "":
		return def
	}
	return AgentTLSSystemStore
}

// CACertsBlocks are the certificates of a cacerts value, each as its own PEM block, in order;
// blocks of other types are left out.
func CACertsBlocks(value string) [][]byte {
	var out [][]byte
	blocks, _ := certs.Blocks([]byte(value))
	for _, b := range blocks {
		out = append(out, pem.EncodeToMemory(b))
	}
	return out
}

// CACertificates parses every certificate of a cacerts value.
func CACertificates(value string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, b := range CACertsBlocks(value) {
		block, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cacerts: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 && strings.TrimSpace(value) != "" {
		return nil, errors.New("cacerts holds no PEM certificate")
	}
	return out, nil
}

// Anchor is the position in the cacerts value (from 0, as CACertsBlocks counts) of the
// certificate the served chain (leaf first) ends in: one of the chain itself, or the issuer
// of one, nearest the leaf; -1 when none is. Time plays no part: an expired anchor is still
// the anchor, and the reason the chain fails.
func Anchor(chain []*x509.Certificate, cacerts string) int {
	var bundle []*x509.Certificate
	for _, b := range CACertsBlocks(cacerts) {
		block, _ := pem.Decode(b)
		c, _ := x509.ParseCertificate(block.Bytes) // nil for one that does not parse: never an anchor
		bundle = append(bundle, c)
	}
	for _, served := range chain {
		for i, ca := range bundle {
			if ca != nil && (ca.Equal(served) || served.CheckSignatureFrom(ca) == nil) {
				return i
			}
		}
	}
	return -1
}

// ChainTrusted tells whether the chain the UI served (leaf first) verifies as an agent will
// verify it on its next connection: against the cacerts certificates as the only roots when
// cacerts is set, else against the system roots; for the host of serverURL when it is set; at
// now. why says what fails.
func ChainTrusted(chain []*x509.Certificate, cacerts, serverURL string, now time.Time) (ok bool, why string) {
	if len(chain) == 0 {
		return false, "no certificate served"
	}
	opts := x509.VerifyOptions{CurrentTime: now, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	against := "the system roots"
	if strings.TrimSpace(cacerts) != "" {
		roots, err := CACertificates(cacerts)
		if err != nil {
			return false, err.Error()
		}
		opts.Roots = x509.NewCertPool()
		for _, r := range roots {
			opts.Roots.AddCert(r)
		}
		against = "the cacerts setting"
	} else {
		roots, err := x509.SystemCertPool()
		if err != nil {
			return false, "no system roots: " + err.Error()
		}
		opts.Roots = roots
	}
	if serverURL != "" {
		u, err := url.Parse(serverURL)
		if err != nil || u.Hostname() == "" {
			return false, fmt.Sprintf("server-url %q names no host", serverURL)
		}
		opts.DNSName = u.Hostname()
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return false, fmt.Sprintf("does not verify against %s: %v", against, err)
	}
	return true, "verifies against " + against
}
