package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// kubeconfig copies a container's admin kubeconfig and points it at a forwarder on loopback to
// the container's address on its Docker network, under the name the kubeconfig has (127.0.0.1,
// or localhost on 2.3): kubectl then names that host in its TLS server name and Host header, as
// k3s's own clients do, and the 2.3 listener adds no name to its certificate (it would for the
// container's address, and mint a new one).
func kubeconfig(t *testing.T, sim *harness.Sim) string {
	t.Helper()
	dir := t.TempDir()
	docker(t, "cp", sim.Name+":/etc/rancher/k3s/k3s.yaml", dir)
	file := filepath.Join(dir, "k3s.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	server := regexp.MustCompile(`(?m)^    server: https://(127\.0\.0\.1|localhost):6443$`)
	m := server.FindSubmatch(data)
	if m == nil {
		t.Fatalf("kubeconfig of %s names no server at 127.0.0.1 or localhost:6443:\n%s", sim.Name, data)
	}
	port := forward(t, containerIP(t, sim)+":6443")
	cfg := server.ReplaceAllString(string(data), "    server: https://"+string(m[1])+":"+itoa(port))
	os.WriteFile(file, []byte(cfg), 0o600)
	return file
}

// forward relays connections to a loopback port of its own to addr, until the test ends.
func forward(t *testing.T, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer out.Close()
				go io.Copy(out, in)
				io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func containerIP(t *testing.T, sim *harness.Sim) string {
	t.Helper()
	in, err := engine.Client.ContainerInspect(context.Background(), sim.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range in.Container.NetworkSettings.Networks {
		if ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	t.Fatalf("%s has no address", sim.Name)
	return ""
}

// kubectlCerts lists the secrets of a container's cluster with kubectl, and returns the
// certificates that a TLS secret's tls.crt or any secret's ca.crt holds, by namespace/name/key,
// as PEM files.
func kubectlCerts(t *testing.T, sim *harness.Sim) map[string]string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "get", "secrets", "--all-namespaces", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl get secrets of %s: %v", sim.Name, err)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Namespace, Name string }
			Type     string
			Data     map[string]string
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("kubectl output: %v", err)
	}
	dir := t.TempDir()
	certs := map[string]string{}
	for _, s := range list.Items {
		for _, key := range []string{"tls.crt", "ca.crt"} {
			b64, ok := s.Data[key]
			if !ok || key == "tls.crt" && s.Type != "kubernetes.io/tls" {
				continue
			}
			data, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			path := s.Metadata.Namespace + "/" + s.Metadata.Name + "/" + key
			file := filepath.Join(dir, strings.ReplaceAll(path, "/", "_"))
			os.WriteFile(file, data, 0o600)
			certs[path] = file
		}
	}
	return certs
}

// TestSecretsMatchKubectl: for every release with cluster secrets, the exporter reports
// exactly the TLS and CA secrets a real kubectl lists, each to the second of openssl.
func TestSecretsMatchKubectl(t *testing.T) {
	sims, _ := fleet(t)
	e := startExporter(t, nil) // discovery
	body := scrapeText(t, e)
	mfs := e.scrape(t)
	for _, p := range harness.Profiles {
		sim := sims[p.Rancher]
		t.Run(p.Rancher, func(t *testing.T) {
			want := kubectlCerts(t, sim)
			got := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "secret"})
			if len(got) != len(want) {
				t.Errorf("%d secret series, kubectl lists %d certificates: %v", len(got), len(want), want)
			}
			for _, s := range got {
				file, ok := want[s.labels["path"]]
				if !ok {
					t.Errorf("series for %s, which kubectl does not list", s.labels["path"])
					continue
				}
				if _, na := opensslDates(t, file); int64(s.value) != na.Unix() {
					t.Errorf("%s: exported %d, openssl says %d", s.labels["path"], int64(s.value), na.Unix())
				}
			}
			if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "secret"}); v != 1 {
				t.Errorf("secret source up = %v", v)
			}
			r := releaseOf(t, p)
			mustHave := []string{"cattle-system/serving-cert/tls.crt", "cattle-system/tls-rancher/tls.crt"}
			if r.windowDays > 0 {
				mustHave = append(mustHave, "kube-system/k3s-serving/tls.crt")
			}
			if r.agent {
				mustHave = append(mustHave, "cattle-system/cattle-webhook-tls/tls.crt", "cattle-system/cattle-webhook-ca/tls.crt", "cattle-system/tls-rancher-internal/tls.crt")
			}
			for _, path := range mustHave {
				if _, ok := want[path]; !ok {
					t.Errorf("the %s cluster has no %s", p.Rancher, path)
				}
			}
		})
	}
	for _, secretData := range []string{"tls.key", "PRIVATE KEY", "sh.helm.release"} {
		if strings.Contains(body, secretData) {
			t.Errorf("the scrape carries %q", secretData)
		}
	}
	if strings.Contains(e.log.String(), "PRIVATE KEY") {
		t.Error("the exporter logged key material")
	}
}

// scrapeText is one scrape as text.
func scrapeText(t *testing.T, e *exporter) string {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// foreignKubeconfig replaces a running container's kubeconfig with one whose client
// certificate no CA of the cluster signed, keeping the server CA.
func foreignKubeconfig(t *testing.T, sim *harness.Sim) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "system:admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	b64 := base64.StdEncoding.EncodeToString
	dir := t.TempDir()
	docker(t, "cp", sim.Name+":/etc/rancher/k3s/k3s.yaml", dir)
	data, _ := os.ReadFile(filepath.Join(dir, "k3s.yaml"))
	cfg := regexp.MustCompile(`client-certificate-data: \S+`).ReplaceAllString(string(data),
		"client-certificate-data: "+b64(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	cfg = regexp.MustCompile(`client-key-data: \S+`).ReplaceAllString(cfg,
		"client-key-data: "+b64(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	os.WriteFile(filepath.Join(dir, "k3s.yaml"), []byte(cfg), 0o600)
	docker(t, "cp", filepath.Join(dir, "k3s.yaml"), sim.Name+":/etc/rancher/k3s/k3s.yaml")
}

// TestSecretSourceFailuresAreIsolated: a crash-looping, a stopped, a refusing and a hung cluster
// each report source_up{source="secret"} 0 with their reason, their file and UI series keep
// coming, and the scrape stays inside its budget.
func TestSecretSourceFailuresAreIsolated(t *testing.T) {
	t.Parallel()
	crashing := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, LeafDays: -3, CrashLoop: true})
	stopped := engine.StartSim(t, harness.SimOptions{Profile: harness.V24, LeafDays: 50})
	refusing := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 50})
	hung := engine.StartSim(t, harness.SimOptions{Profile: harness.V2123, LeafDays: 50, Env: []string{"SIM_API_STALL=60s"}})
	for _, sim := range []*harness.Sim{stopped, refusing, hung} {
		engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	}
	waitRestarts(t, crashing, 2)
	docker(t, "stop", "-t", "10", stopped.Name)
	foreignKubeconfig(t, refusing)

	e := startExporter(t, nil, "--rancher.container", crashing.Name, "--rancher.container", stopped.Name,
		"--rancher.container", refusing.Name, "--rancher.container", hung.Name)
	start := time.Now()
	mfs := e.scrape(t)
	took := time.Since(start)
	t.Logf("a scrape with a hung API server took %s", took.Round(time.Millisecond))
	if took > 9*time.Second {
		t.Errorf("the scrape took %s: a hung API server must not hold it past its budget", took)
	}
	for _, tc := range []struct {
		sim    *harness.Sim
		reason string
		ui     bool
	}{
		{crashing, "api_unreachable", false},
		{stopped, "api_unreachable", false},
		{refusing, "api_auth", true},
		{hung, "api_unreachable", true},
	} {
		if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": tc.sim.Name, "source": "secret"}); v != 0 {
			t.Errorf("%s: secret source up = %v", tc.sim.Profile.Rancher, v)
		}
		if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "secret", "reason": tc.reason}); v < 1 {
			t.Errorf("%s: no read error counted as %s", tc.sim.Profile.Rancher, tc.reason)
		}
		if n := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": tc.sim.Name, "source": "k3s"})); n < releaseOf(t, tc.sim.Profile).certFiles() {
			t.Errorf("%s: %d k3s series beside a failing secret source", tc.sim.Profile.Rancher, n)
		}
		if tc.ui && len(series(mfs, "cert_not_after_seconds", map[string]string{"container": tc.sim.Name, "source": "ui"})) != 1 {
			t.Errorf("%s: no ui series beside a failing secret source", tc.sim.Profile.Rancher)
		}
		if n := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": tc.sim.Name, "source": "secret"})); n != 0 {
			t.Errorf("%s: %d secret series from a failing source", tc.sim.Profile.Rancher, n)
		}
	}
	for _, want := range []string{"api_auth", "api_unreachable"} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("the log does not say %s:\n%s", want, e.log)
		}
	}
}
