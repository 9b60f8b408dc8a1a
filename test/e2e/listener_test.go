package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// servedAPICert is the certificate a 2.3 container's 6443 listener serves to a client that
// names localhost, as Rancher does; dialed at the container's address.
func servedAPICert(t *testing.T, sim *harness.Sim) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", containerIP(t, sim)+":6443", &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS to 6443 of %s: %v", sim.Name, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// kubectlListenerCert reads the certificate k3s v0.8 keeps in its ListenerConfig with a real
// kubectl, through the kubeconfig's own name (localhost), which adds nothing to it.
func kubectlListenerCert(t *testing.T, sim *harness.Sim) *x509.Certificate {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "get",
		"listenerconfigs.k3s.cattle.io", "-n", "kube-system", "tls-config", "-o", "jsonpath={.status.generatedCerts.cattle}").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get listenerconfigs: %v\n%s", err, out)
	}
	certPart, _, _ := strings.Cut(string(out), "#")
	der, err := base64.StdEncoding.DecodeString(certPart)
	if err != nil {
		t.Fatalf("kubectl listenerconfig: %v\n%s", err, out)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestListenerCertificateOf23: the 6443 certificate of Rancher 2.3, which no file holds, is
// exported exact to the second — what 6443 serves and what a real kubectl reads from its
// ListenerConfig — and reading it, again and again, never makes the listener mint a new one.
func TestListenerCertificateOf23(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 40})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	served := servedAPICert(t, sim)
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.refresh-interval", "1s")
	match := map[string]string{"container": sim.Name, "source": "listener"}
	for i := 0; i < 4; i++ {
		mfs := e.scrape(t)
		s := series(mfs, "cert_not_after_seconds", match)
		if len(s) != 1 {
			t.Fatalf("scrape %d: %d listener series, want 1", i, len(s))
		}
		l := s[0].labels
		if l["path"] != "kube-system/tls-config" || l["subject_cn"] != "cattle" || l["serial_number"] != served.SerialNumber.String() || l["ca"] != "false" {
			t.Fatalf("listener series %v, want path kube-system/tls-config, CN cattle, serial %s", l, served.SerialNumber)
		}
		if int64(s[0].value) != served.NotAfter.Unix() {
			t.Fatalf("listener expiry %v, 6443 serves %d (%s)", s[0].value, served.NotAfter.Unix(), served.NotAfter)
		}
		if nb := value(t, mfs, "cert_not_before_seconds", match); int64(nb) != served.NotBefore.Unix() {
			t.Fatalf("listener notBefore %v, 6443 serves %s", nb, served.NotBefore)
		}
		if up := value(t, mfs, "rancher_cert_exporter_source_up", match); up != 1 {
			t.Fatalf("listener source up %v", up)
		}
		time.Sleep(1100 * time.Millisecond) // the refresh interval passes: the next scrape reads again
	}
	if got := value(t, e.scrape(t), "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name}); got < 3 {
		t.Fatalf("%v tree reads: the refresh interval did not make the exporter read again", got)
	}
	if after := servedAPICert(t, sim); after.SerialNumber.Cmp(served.SerialNumber) != 0 {
		t.Fatalf("6443 serves serial %s after the exporter's reads, %s before: a read made the listener mint a new certificate", after.SerialNumber, served.SerialNumber)
	}
	if logs := engine.Logs(t, sim.ID); strings.Count(logs, "Minted the 6443 listener certificate") != 1 {
		t.Fatalf("the listener minted more than its install's certificate:\n%s", logs)
	}
	if got := kubectlListenerCert(t, sim); got.SerialNumber.Cmp(served.SerialNumber) != 0 || !got.NotAfter.Equal(served.NotAfter) {
		t.Fatalf("kubectl reads serial %s expiring %s, 6443 served %s expiring %s", got.SerialNumber, got.NotAfter, served.SerialNumber, served.NotAfter)
	}
}

// TestListenerCertificateWhenTheAPIDoesNotAnswer: while 2.3's API server does not answer, the
// last value read stays, with the source down; a server whose API never answered says on the
// status page that its 6443 certificate could not be checked.
func TestListenerCertificateWhenTheAPIDoesNotAnswer(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 40})
	crashing := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	waitRestarts(t, crashing, 1)
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.container", crashing.Name, "--rancher.refresh-interval", "1s")
	match := map[string]string{"container": sim.Name, "source": "listener"}
	before := value(t, e.scrape(t), "cert_not_after_seconds", match)

	docker(t, "pause", sim.Name)
	defer docker(t, "unpause", sim.Name)
	// The next read, a second on, waits out its 5 s timeout: then the source is down.
	var mfs map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		mfs = e.scrape(t)
		if value(t, mfs, "rancher_cert_exporter_source_up", match) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener source is still up 10 s after the container was paused")
		}
	}
	if got := value(t, mfs, "cert_not_after_seconds", match); got != before {
		t.Fatalf("while the API does not answer the listener expiry is %v, want the last read %v", got, before)
	}
	if v := value(t, mfs, "rancher_cert_exporter_container_state", map[string]string{"container": sim.Name, "state": "paused"}); v != 1 {
		t.Fatalf("container_state{state=paused} = %v for a paused container", v)
	}
	if s := series(mfs, "cert_not_after_seconds", map[string]string{"container": crashing.Name, "source": "listener"}); len(s) != 0 {
		t.Fatalf("a listener certificate for a server whose API never answered: %v", s)
	}
	page := e.page(t)
	section := page[strings.Index(page, `id="server-`+crashing.Name+`"`):]
	section = section[:strings.Index(section, "</section>")]
	if !strings.Contains(section, "6443 certificate") || !strings.Contains(section, "not checked") {
		t.Fatalf("the status page does not say that %s's 6443 certificate could not be checked:\n%s", crashing.Name, section)
	}
}

// pemFile writes a certificate to a PEM file, for openssl.
func pemFile(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestLeafRotationOf23SaysWhatItLeft: on a crash-looping 2.3 with everything expired, leaf
// renews the leaves but not the 6443 certificate, which k3s mints again only for a new CA: the
// job fails, says why, and says truly that the container crash-loops — never "running".
func TestLeafRotationOf23SaysWhatItLeft(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	waitRestarts(t, sim, 1)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	rep := e.rotate(t, sim.Name, `{"strategy": "leaf"}`)
	if rep.State != rotation.Failed || !strings.Contains(rep.Error, "x509: certificate has expired") {
		t.Fatalf("leaf on an expired 2.3: %s %q", rep.State, rep.Error)
	}
	if !strings.Contains(rep.ContainerState, "crash-looping") {
		t.Fatalf("container state %q, want crash-looping; steps %+v", rep.ContainerState, rep.Steps)
	}
	for _, s := range rep.Steps {
		if s.Name == "recover" && !strings.Contains(s.Detail, "crash-looping") {
			t.Fatalf("recover step says %q of a crash-looping container", s.Detail)
		}
	}
}
