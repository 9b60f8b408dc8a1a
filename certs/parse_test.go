package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

func newCertPEM(t testing.TB, cn string, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParse(t *testing.T) {
	notAfter := time.Date(2031, 10, 19, 12, 0, 7, 0, time.UTC)
	first := newCertPEM(t, "first", notAfter)
	second := newCertPEM(t, "second", notAfter.Add(time.Hour))
	key := []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
	secret := fmt.Sprintf(`{"kind":"Secret","data":{"tls.crt":%q,"tls.key":"eA=="}}`,
		base64.StdEncoding.EncodeToString(first))

	tests := []struct {
		name, file string
		data       []byte
		wantCN     string
		wantReason string
	}{
		{"first of a chain", "a.crt", append(append([]byte{}, first...), second...), "first", ""},
		{"cert after a key block", "a.pem", append(append([]byte{}, key...), first...), "first", ""},
		{"dynamiclistener cache", DynamicCertFile, []byte(secret), "first", ""},
		{"key only", "a.pem", key, "", ""},
		{"empty", "a.crt", nil, "", readerr.Empty},
		{"junk", "a.crt", []byte("not a certificate"), "", readerr.NoCertificate},
		{"corrupt DER", "a.crt", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "", readerr.ParseError},
		{"bad JSON", DynamicCertFile, []byte("{"), "", readerr.ParseError},
		{"secret without tls.crt", DynamicCertFile, []byte(`{"data":{}}`), "", readerr.NoCertificate},
		{"too large", "a.crt", make([]byte, MaxFileSize+1), "", readerr.TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := Parse(tt.file, tt.data)
			if tt.wantReason != "" {
				if err == nil || readerr.ReasonOf(err) != tt.wantReason {
					t.Fatalf("err = %v, want reason %s", err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantCN == "" {
				if cert != nil {
					t.Fatalf("got certificate %q, want none", cert.Subject.CommonName)
				}
				return
			}
			if cert.Subject.CommonName != tt.wantCN || !cert.NotAfter.Equal(notAfter) {
				t.Fatalf("got %s %s, want %s %s", cert.Subject.CommonName, cert.NotAfter, tt.wantCN, notAfter)
			}
		})
	}
}

// TestParseK3sFixture compares every certificate of a tree written by k3s v0.8.1 with what
// openssl prints for the same file.
func TestParseK3sFixture(t *testing.T) {
	testenv.Tool(t, "openssl", "openssl")
	root := filepath.Join("..", "testdata", "k3s-v0.8.1-tls")
	files, _ := filepath.Glob(filepath.Join(root, "*", "*.crt"))
	more, _ := filepath.Glob(filepath.Join(root, "server", "tls", "*.crt"))
	files = append(files, more...)
	if len(files) < 15 {
		t.Fatalf("found %d fixture files, want at least 15", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := Parse(f, data)
		if err != nil || cert == nil {
			t.Fatalf("%s: %v", f, err)
		}
		out, err := exec.Command("openssl", "x509", "-noout", "-enddate", "-serial", "-in", f).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := string(out)
		got := fmt.Sprintf("notAfter=%s\nserial=%s\n", cert.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"),
			strings.ToUpper(fmt.Sprintf("%02x", cert.SerialNumber)))
		if got != want {
			t.Errorf("%s: parsed\n%s openssl\n%s", f, got, want)
		}
	}
}

func TestCacheParsesUnchangedContentOnce(t *testing.T) {
	var c Cache
	data := newCertPEM(t, "cached", time.Now().Add(time.Hour))
	a, _ := c.Parse("/x.crt", data)
	b, _ := c.Parse("/x.crt", data)
	if a != b {
		t.Fatal("second parse of unchanged content returned a new certificate")
	}
	c.Sweep()
	c.Sweep() // not used since the previous sweep: dropped
	if c.Len() != 0 {
		t.Fatalf("cache holds %d entries after two idle sweeps", c.Len())
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a.crt", newCertPEM(f, "seed", time.Now()))
	f.Add(DynamicCertFile, []byte(`{"data":{"tls.crt":"eA=="}}`))
	f.Add("a.pem", []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		cert, err := Parse(name, data)
		if cert != nil && err != nil {
			t.Fatal("both a certificate and an error")
		}
		if err != nil && readerr.ReasonOf(err) == "" {
			t.Fatal("error without reason")
		}
	})
}
