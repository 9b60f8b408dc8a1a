package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// operatorCA is a CA an operator brings: made here, its key never written outside the test.
type operatorCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newOperatorCA(t *testing.T, cn string) operatorCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return operatorCA{cert, key}
}

// serving issues a UI certificate for the server's host: its chain (leaf, CA) and key as PEM.
func (ca operatorCA) serving(t *testing.T, host string) (chain, key []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(k)
	chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.pem()...)
	return chain, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func (ca operatorCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// mountCertificates puts files into the container's /etc/rancher/ssl, as an operator mounts
// their certificate (Rancher's single-node options B and C), and restarts it to take them.
func mountCertificates(t *testing.T, sim *harness.Sim, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, dir := range []string{"etc/", "etc/rancher/", "etc/rancher/ssl/"} {
		tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: "etc/rancher/ssl/" + name, Mode: 0o600, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	if _, err := engine.Client.CopyToContainer(context.Background(), sim.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		t.Fatal(err)
	}
}

// servedCACerts is what the UI's /cacerts serves, as an agent downloads it.
func servedCACerts(t *testing.T, sim *harness.Sim) []byte {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // an agent checks the checksum, not the chain, here
	resp, err := c.Get("https://127.0.0.1:" + itoa(sim.UIPort) + "/cacerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/cacerts: %s", resp.Status)
	}
	return body
}

// waitAlert waits until Prometheus has the alert for the container firing (or not).
func waitAlert(t *testing.T, promURL, name, container string, firing bool, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		var alerts []struct{ Metric map[string]string }
		promGet(t, promURL+"/api/v1/query?query="+urlQuery(`ALERTS{alertstate="firing", alertname="`+name+`", container="`+container+`"}`), &struct {
			Result *[]struct{ Metric map[string]string }
		}{&alerts})
		if (len(alerts) > 0) == firing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s for %s firing %v, want %v after %s", name, container, !firing, firing, timeout)
		}
	}
}

// TestTrustChainAgentsPin: a 2.12 server installed with its own cattle-ca. The exporter reports
// the checksum agents pin as the SHA-256 of what /cacerts serves, strict mode, the CA's expiry as
// openssl reads it, and a UI chain agents trust. Then the operator mounts a certificate of their
// own CA and restarts, keeping the old cattle-ca as cacerts.pem so that the checksum does not
// change: a real Prometheus fires RancherUICertificateUntrustedByAgents, not RancherCACertsChanged.
// They mount their CA as cacerts.pem and restart: the chain is trusted again, and
// RancherCACertsChanged fires for the new checksum.
func TestTrustChainAgentsPin(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V2123, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.refresh-interval", "5s", "--rancher.ui-refresh-interval", "2s")
	prom := prometheusOn(t, e)

	served := servedCACerts(t, sim)
	sum := sha256.Sum256(served)
	mfs := e.scrape(t)
	info := series(mfs, "rancher_cert_exporter_cacerts_info", map[string]string{"container": sim.Name})
	if len(info) != 1 || info[0].labels["sha256"] != hex.EncodeToString(sum[:]) || info[0].labels["agent_tls_mode"] != "strict" {
		t.Fatalf("cacerts_info %v, want the SHA-256 of /cacerts %x and strict", info, sum)
	}
	caFile := filepath.Join(t.TempDir(), "cacerts.pem")
	os.WriteFile(caFile, served, 0o644)
	if _, na := opensslDates(t, caFile); int64(value(t, mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "setting", "path": "cacerts#1"})) != na.Unix() {
		t.Errorf("the cacerts CA's expiry is not openssl's %s", na)
	}
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "get",
		"settings.management.cattle.io", "cacerts", "-o", "jsonpath={.value}").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != strings.TrimSpace(string(served)) {
		t.Errorf("kubectl reads cacerts %q (%v), /cacerts serves %q", out, err, served)
	}
	if v := value(t, mfs, "rancher_cert_exporter_ui_chain_trusted", map[string]string{"container": sim.Name}); v != 1 {
		t.Fatalf("ui_chain_trusted = %v on a fresh self-signed install", v)
	}

	// The operator's own certificate. Without cacerts.pem or --no-cacerts Rancher refuses to
	// start; with the old cattle-ca as cacerts.pem — the checksum the agents have — it starts,
	// and the agents will not trust it.
	ca := newOperatorCA(t, "operator-ca")
	chain, key := ca.serving(t, "rancher.local")
	mountCertificates(t, sim, map[string][]byte{"cert.pem": chain, "key.pem": key})
	restart(t, sim)
	engine.WaitLog(t, sim.ID, "invalid SSL configuration found", 30*time.Second)
	mountCertificates(t, sim, map[string][]byte{"cacerts.pem": served})
	restart(t, sim)
	waitCount(t, sim, simReady, 2)
	waitAlert(t, prom, "RancherUICertificateUntrustedByAgents", sim.Name, true, 30*time.Second)
	waitAlert(t, prom, "RancherCACertsChanged", sim.Name, false, time.Second)
	page := e.page(t)
	if !strings.Contains(page, "Downstream agents will not trust this server.") {
		t.Errorf("the status page does not say the agents will not trust the server")
	}
	if out, code := runCheck(t, "--rancher.container", sim.Name); code != 2 || !strings.Contains(out, "CRITICAL") || !strings.Contains(out, "downstream agents will refuse the server") {
		t.Errorf("check with an untrusted chain: exit %d\n%s", code, out)
	}

	// The fix: the operator's CA as cacerts, agents to be updated with the new checksum.
	mountCertificates(t, sim, map[string][]byte{"cacerts.pem": ca.pem()})
	restart(t, sim)
	waitCount(t, sim, simReady, 3)
	waitAlert(t, prom, "RancherCACertsChanged", sim.Name, true, 30*time.Second)
	waitAlert(t, prom, "RancherUICertificateUntrustedByAgents", sim.Name, false, 30*time.Second)
	newSum := sha256.Sum256(servedCACerts(t, sim))
	if got := series(e.scrape(t), "rancher_cert_exporter_cacerts_info", map[string]string{"container": sim.Name}); len(got) != 1 || got[0].labels["sha256"] != hex.EncodeToString(newSum[:]) {
		t.Errorf("after the change: %v, want %x", got, newSum)
	}

	// A bundle: an expired old root left before the CA the chain ends in. Every certificate of
	// it is exported; only the anchor is judged, so nothing warns and check says OK.
	old := expiredCA(t, "old-root")
	mountCertificates(t, sim, map[string][]byte{"cacerts.pem": append(old, ca.pem()...)})
	restart(t, sim)
	waitCount(t, sim, simReady, 4)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var anchored []struct{ Metric map[string]string }
		promGet(t, prom+"/api/v1/query?query="+urlQuery(`rancher_cert_exporter_cacerts_anchor{container="`+sim.Name+`", path="cacerts#2"} == 1`), &struct {
			Result *[]struct{ Metric map[string]string }
		}{&anchored})
		if len(anchored) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Prometheus has no anchor cacerts#2 after 30 s")
		}
	}
	time.Sleep(3 * time.Second) // three evaluations of the rules
	var pending []struct{ Metric map[string]string }
	promGet(t, prom+"/api/v1/query?query="+urlQuery(`ALERTS{alertname="RancherCACertificateExpiringSoon", container="`+sim.Name+`"}`), &struct {
		Result *[]struct{ Metric map[string]string }
	}{&pending})
	if len(pending) != 0 {
		t.Errorf("RancherCACertificateExpiringSoon for an expired root the chain does not end in: %v", pending)
	}
	mfs = e.scrape(t)
	for path, want := range map[string]float64{"cacerts#1": 0, "cacerts#2": 1} {
		if v := value(t, mfs, "rancher_cert_exporter_cacerts_anchor", map[string]string{"container": sim.Name, "path": path}); v != want {
			t.Errorf("cacerts_anchor %s = %v, want %v", path, v, want)
		}
		if s := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "setting", "path": path}); len(s) != 1 {
			t.Errorf("%s exported %d times", path, len(s))
		}
	}
	if out, code := runCheck(t, "--rancher.container", sim.Name); code != 0 || !strings.Contains(out, "cacerts#1") || !strings.Contains(out, "UNUSED (in cacerts, but the UI chain ends in cacerts#2") {
		t.Errorf("check with an expired root beside the anchor: exit %d\n%s", code, out)
	}
	if page := e.page(t); !strings.Contains(page, "CA cacerts#2 operator-ca") || !strings.Contains(page, "the one the UI chain ends in") {
		t.Errorf("the status page does not name the anchor")
	}
}

// expiredCA is a CA that expired yesterday, as PEM: an old root left in a cacerts bundle.
func expiredCA(t *testing.T, cn string) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-3650 * 24 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestTrustWithAPublicCertificate: --no-cacerts (a certificate from a public CA) leaves cacerts
// empty: the checksum is empty, there is no CA series, and the chain is judged against the
// system roots — where the simulator's self-signed cattle-ca is not.
func TestTrustWithAPublicCertificate(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, Args: []string{"--no-cacerts"}})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	if body := servedCACerts(t, sim); len(body) != 0 {
		t.Fatalf("/cacerts serves %q with --no-cacerts", body)
	}
	mfs := e.scrape(t)
	info := series(mfs, "rancher_cert_exporter_cacerts_info", map[string]string{"container": sim.Name})
	if len(info) != 1 || info[0].labels["sha256"] != "" || info[0].labels["agent_tls_mode"] != "system-store" {
		t.Fatalf("cacerts_info %v, want an empty checksum and system-store (2.7 has no agent-tls-mode)", info)
	}
	if s := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "setting"}); len(s) != 0 {
		t.Errorf("a CA series for an empty cacerts: %v", s)
	}
	if v := value(t, mfs, "rancher_cert_exporter_ui_chain_trusted", map[string]string{"container": sim.Name}); v != 0 {
		t.Errorf("ui_chain_trusted = %v: a self-signed chain against the system roots", v)
	}
}
