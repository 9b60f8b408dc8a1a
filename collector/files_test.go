package collector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// certPEM makes a self-signed certificate (a CA when isCA) with fixed fields.
func certPEM(t testing.TB, cn string, serial int64, notAfter time.Time, isCA bool) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter,
		IsCA: isCA, BasicConstraintsValid: isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testKey.PublicKey, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func write(t testing.TB, file string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

var expiry = time.Date(2021, 10, 19, 8, 30, 5, 0, time.UTC)

// hostTree writes a k3s-like tree with every kind of bad input next to good certificates.
func hostTree(t *testing.T) string {
	dir := t.TempDir()
	tls := filepath.Join(dir, "server", "tls")
	write(t, filepath.Join(tls, "server-ca.crt"), certPEM(t, "k3s-server-ca@1603096205", 0, expiry.AddDate(9, 0, 0), true))
	write(t, filepath.Join(tls, "client-admin.crt"), certPEM(t, "system:admin", 7, expiry, false))
	write(t, filepath.Join(tls, "client-admin.key"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	write(t, filepath.Join(tls, "etcd", "peer.pem"), certPEM(t, "etcd-peer", 9, expiry.Add(time.Second), false))
	write(t, filepath.Join(tls, "empty.crt"), nil)
	write(t, filepath.Join(tls, "junk.crt"), []byte("hello"))
	write(t, filepath.Join(tls, "corrupt.crt"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	write(t, filepath.Join(tls, "big.crt"), make([]byte, 2<<20))
	write(t, filepath.Join(dir, "outside", "secret.crt"), certPEM(t, "outside", 1, expiry, false))
	os.Symlink("client-admin.crt", filepath.Join(tls, "alias.crt"))
	os.Symlink(filepath.Join(dir, "outside", "secret.crt"), filepath.Join(tls, "escape.crt"))
	os.Symlink("loop-b.crt", filepath.Join(tls, "loop-a.crt"))
	os.Symlink("loop-a.crt", filepath.Join(tls, "loop-b.crt"))
	os.Symlink(tls, filepath.Join(tls, "etcd", "up"))     // a directory loop WalkDir must not follow
	syscall.Mkfifo(filepath.Join(tls, "fifo.crt"), 0o644) // reported, never opened: that would block
	return dir
}

func TestFileSourceReasons(t *testing.T) {
	dir := hostTree(t)
	tls := filepath.Join(dir, "server", "tls")
	res, _ := newFileSource([]string{tls, filepath.Join(dir, "nothing", "*.crt")}).scan()

	got := map[string]string{}
	for _, c := range res.Certs {
		got[strings.TrimPrefix(c.Path, tls+"/")] = c.Cert.SubjectCN
	}
	for _, e := range res.Errors {
		got[strings.TrimPrefix(e.Path, tls+"/")] = "error:" + readerr.ReasonOf(e.Err)
	}
	want := map[string]string{
		"server-ca.crt":                        "k3s-server-ca@1603096205",
		"client-admin.crt":                     "system:admin",
		"alias.crt":                            "system:admin",
		"etcd/peer.pem":                        "etcd-peer",
		"empty.crt":                            "error:" + readerr.Empty,
		"junk.crt":                             "error:" + readerr.NoCertificate,
		"corrupt.crt":                          "error:" + readerr.ParseError,
		"big.crt":                              "error:" + readerr.TooLarge,
		"escape.crt":                           "error:" + readerr.Symlink,
		"loop-a.crt":                           "error:" + readerr.Symlink,
		"loop-b.crt":                           "error:" + readerr.Symlink,
		"fifo.crt":                             "error:" + readerr.NotRegular,
		filepath.Join(dir, "nothing", "*.crt"): "error:" + readerr.NotFound,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %d entries", got, len(want))
	}
	if res.Up {
		t.Error("source up although a pattern matched nothing")
	}
}

func TestFileSourceReparsesOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.crt")
	write(t, file, certPEM(t, "first", 1, expiry, false))
	s := newFileSource([]string{dir})
	scan := func() model.SourceResult { res, _ := s.scan(); return res }
	first := scan().Certs[0].Cert
	if again := scan().Certs[0].Cert; again != first {
		t.Fatal("unchanged file was parsed again")
	}
	write(t, file, certPEM(t, "second", 2, expiry, false))
	later := time.Now().Add(time.Minute)
	os.Chtimes(file, later, later)
	if c := scan().Certs[0].Cert; c.SubjectCN != "second" {
		t.Fatalf("changed file still reads %q", c.SubjectCN)
	}
	os.Remove(file)
	if res := scan(); len(res.Certs) != 0 || s.stats.Len() != 0 {
		t.Fatalf("removed file still reported: %v, cache %d", res.Certs, s.stats.Len())
	}
}

// TestGoldenMetrics compares a scrape of the file source with testdata/metrics.golden, without
// the series whose values vary (durations, ages); go test ./collector -update rewrites it.
func TestGoldenMetrics(t *testing.T) {
	dir := hostTree(t)
	c := New(Config{FilePatterns: []string{filepath.Join(dir, "server")}}, promslog.NewNopLogger())
	got := strings.ReplaceAll(scrape(t, exposition.New(c).Handler(prometheus.NewRegistry(), promslog.NewNopLogger())), dir, "/TMP")
	var kept []string
	for _, line := range strings.SplitAfter(got, "\n") {
		if !strings.Contains(line, "duration_seconds") && !strings.Contains(line, "age_seconds") {
			kept = append(kept, line)
		}
	}
	got = strings.Join(kept, "")
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		write(t, golden, []byte(got))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("scrape differs from %s (run with -update to accept):\n%s", golden, got)
	}
	{
		cmd := exec.Command(testenv.Tool(t, "promtool", "prometheus"), "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape(t, exposition.New(c).Handler(prometheus.NewRegistry(), promslog.NewNopLogger())))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// scrape is one uncompressed GET of a handler.
func scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
