package rancher

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// issuer is a CA made in the test: its certificate and key.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64

// issue signs a certificate for cn with parent (self-signed when parent is nil).
func issue(t *testing.T, cn string, ca bool, parent *issuer, notAfter time.Time, dns ...string) issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	notBefore := time.Now().Add(-24 * time.Hour)
	if early := notAfter.Add(-365 * 24 * time.Hour); early.Before(notBefore) {
		notBefore = early
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: notBefore, NotAfter: notAfter, IsCA: ca, BasicConstraintsValid: true}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return issuer{cert, key}
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// TestChainTrustedAsAgentsVerify: chains made here, each verified as an agent will.
func TestChainTrustedAsAgentsVerify(t *testing.T) {
	now := time.Now()
	year := now.Add(365 * 24 * time.Hour)
	root := issue(t, "cattle-ca", true, nil, now.Add(3650*24*time.Hour))
	other := issue(t, "another-ca", true, nil, now.Add(3650*24*time.Hour))
	inter := issue(t, "intermediate", true, &root, year)
	leaf := issue(t, "cattle", false, &root, year, "rancher.example.test")
	viaInter := issue(t, "cattle", false, &inter, year, "rancher.example.test")
	expiredRoot := issue(t, "old-ca", true, nil, now.Add(-time.Hour))
	underExpired := issue(t, "cattle", false, &expiredRoot, year, "rancher.example.test")
	url := "https://rancher.example.test"

	for _, tc := range []struct {
		name         string
		chain        []*x509.Certificate
		cacerts, url string
		trusted      bool
		says         string
	}{
		{"signed by the cacerts CA", []*x509.Certificate{leaf.cert, root.cert}, pemOf(root.cert), url, true, "verifies against the cacerts setting"},
		{"signed by another CA", []*x509.Certificate{leaf.cert, root.cert}, pemOf(other.cert), url, false, "unknown authority"},
		{"intermediate served", []*x509.Certificate{viaInter.cert, inter.cert}, pemOf(root.cert), url, true, "verifies"},
		{"intermediate missing", []*x509.Certificate{viaInter.cert}, pemOf(root.cert), url, false, "unknown authority"},
		{"intermediate only in cacerts", []*x509.Certificate{viaInter.cert}, pemOf(root.cert, inter.cert), url, true, "verifies"},
		{"expired CA", []*x509.Certificate{underExpired.cert, expiredRoot.cert}, pemOf(expiredRoot.cert), url, false, "expired"},
		{"another host in server-url", []*x509.Certificate{leaf.cert}, pemOf(root.cert), "https://rancher.other.test:8443", false, "rancher.other.test"},
		{"no server-url: any name", []*x509.Certificate{leaf.cert}, pemOf(root.cert), "", true, "verifies"},
		{"empty cacerts: the system roots", []*x509.Certificate{leaf.cert, root.cert}, "  \n", url, false, "the system roots"},
		{"junk cacerts", []*x509.Certificate{leaf.cert}, "hello", url, false, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := ChainTrusted(tc.chain, tc.cacerts, tc.url, now)
			if ok != tc.trusted || !strings.Contains(why, tc.says) {
				t.Errorf("trusted %v (%s), want %v saying %q", ok, why, tc.trusted, tc.says)
			}
		})
	}
}

// TestAnchorIsTheCertificateTheChainEndsIn: of a cacerts bundle, the certificate that signs the
// served chain (or is in it), whatever the time, nearest the leaf; -1 for none.
func TestAnchorIsTheCertificateTheChainEndsIn(t *testing.T) {
	now := time.Now()
	year := now.Add(365 * 24 * time.Hour)
	root := issue(t, "cattle-ca", true, nil, now.Add(20*24*time.Hour))
	old := issue(t, "old-ca", true, nil, now.Add(-24*time.Hour))
	unrelated := issue(t, "unrelated-ca", true, nil, now.Add(3650*24*time.Hour))
	inter := issue(t, "intermediate", true, &root, year)
	leaf := issue(t, "cattle", false, &root, year, "rancher.example.test")
	viaInter := issue(t, "cattle", false, &inter, year, "rancher.example.test")
	expiredRoot := issue(t, "expired-ca", true, nil, now.Add(-time.Hour))
	underExpired := issue(t, "cattle", false, &expiredRoot, year, "rancher.example.test")
	for _, tc := range []struct {
		name    string
		chain   []*x509.Certificate
		cacerts string
		want    int
	}{
		{"an expired old root before the anchor", []*x509.Certificate{leaf.cert}, pemOf(old.cert, root.cert), 1},
		{"an unrelated ten-year CA before the anchor", []*x509.Certificate{leaf.cert, root.cert}, pemOf(unrelated.cert, root.cert), 1},
		{"the intermediate in cacerts is nearest", []*x509.Certificate{viaInter.cert, inter.cert}, pemOf(root.cert, inter.cert), 1},
		{"the root of a served intermediate", []*x509.Certificate{viaInter.cert, inter.cert}, pemOf(unrelated.cert, root.cert), 1},
		{"an expired anchor is the anchor", []*x509.Certificate{underExpired.cert}, pemOf(unrelated.cert, expiredRoot.cert), 1},
		{"none", []*x509.Certificate{leaf.cert}, pemOf(unrelated.cert, old.cert), -1},
		{"a block that does not parse counts its place", []*x509.Certificate{leaf.cert}, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + pemOf(root.cert), 1},
		{"empty", []*x509.Certificate{leaf.cert}, "", -1},
	} {
		if got := Anchor(tc.chain, tc.cacerts); got != tc.want {
			t.Errorf("%s: anchor %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestCAChecksumIsWhatCACertsServes: the checksum is the SHA-256 of what /cacerts serves — the
// value with a newline added when it lacks one — and nothing is served for a blank value.
func TestCAChecksumIsWhatCACertsServes(t *testing.T) {
	ca := pemOf(issue(t, "cattle-ca", true, nil, time.Now().Add(time.Hour)).cert)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	trimmed := strings.TrimSuffix(ca, "\n")
	for value, want := range map[string]string{ca: sum(ca), trimmed: sum(ca), "": "", " \n\t": ""} {
		if got := CAChecksum(value); got != want {
			t.Errorf("CAChecksum(%.20q) = %s, want %s", value, got, want)
		}
	}
	if string(CACertsServed(trimmed)) != ca || CACertsServed("\n") != nil {
		t.Error("CACertsServed")
	}
}

func TestEffectiveAgentTLSMode(t *testing.T) {
	for _, tc := range []struct {
		found      bool
		value, def string
		want       string
	}{
		{false, "", "", AgentTLSSystemStore}, // before 2.9
		{true, "", "strict", AgentTLSStrict}, // a fresh 2.9 install
		{true, "system-store", "strict", AgentTLSSystemStore},
	} {
		if got := EffectiveAgentTLSMode(tc.found, tc.value, tc.def); got != tc.want {
			t.Errorf("%+v: %s", tc, got)
		}
	}
}
