package e2e

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// reissue signs a new certificate for a leaf of a running container's tree with its own key and
// CA, expiring in days — what time does to a file nothing renews — and copies it in.
func reissue(t *testing.T, sim *harness.Sim, leaf, ca string, days int) {
	t.Helper()
	root := copyTree(t, sim.Name)
	read := func(rel string) *pem.Block {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		return block
	}
	caCert, err := x509.ParseCertificate(read(ca + ".crt").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := x509.ParseECPrivateKey(read(ca + ".key").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParseECPrivateKey(read(leaf + ".key").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	old, err := x509.ParseCertificate(read(leaf + ".crt").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: old.Subject.CommonName, Organization: old.Subject.Organization},
		NotBefore: caCert.NotBefore, NotAfter: time.Now().Add(time.Duration(days) * day), ExtKeyUsage: old.ExtKeyUsage, KeyUsage: old.KeyUsage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, filepath.Base(leaf)+".crt")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})...)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	docker(t, "cp", file, sim.Name+":/var/lib/rancher/k3s/"+leaf+".crt")
}

// prometheusOn runs a real Prometheus with the shipped rules (for: 0s, so that anything they
// match fires at once) scraping the exporter every second, and returns its URL.
func prometheusOn(t *testing.T, e *exporter) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: rancher-cert-exporter
    static_configs:
      - targets: [%q]
`, testRules(t, dir), strings.TrimPrefix(e.url, "http://"))
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	startDaemon(t, url+"/-/ready", "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	return url
}

// firing lists the alerts a Prometheus has, as name and path, after a few evaluations of
// scrapes that already hold the container's certificates.
func firing(t *testing.T, promURL, container string) []string {
	t.Helper()
	var up []struct{ Value [2]any }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		promGet(t, promURL+"/api/v1/query?query="+urlQuery(`count(cert_not_after_seconds{source="k3s", container="`+container+`"})`), &struct{ Result *[]struct{ Value [2]any } }{&up})
		if len(up) == 1 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(3 * time.Second) // three evaluations of the rules
	var alerts []struct{ Metric map[string]string }
	promGet(t, promURL+"/api/v1/query?query=ALERTS", &struct {
		Result *[]struct{ Metric map[string]string }
	}{&alerts})
	var out []string
	for _, a := range alerts {
		out = append(out, a.Metric["alertname"]+" "+a.Metric["path"])
	}
	sort.Strings(out)
	return out
}

func urlQuery(q string) string { return url.QueryEscape(q) }

// TestUpgradeWalk walks one data volume through the releases an operator upgrades across —
// 2.5.7, 2.6, 2.7.5, 2.10, 2.11.3, 2.12.3, 2.13.8, 2.14.4 — by Rancher's upgrade procedure. At each release the
// exporter marks unused exactly what earlier k3s releases left (client-cloud-controller.crt from
// 2.6, the server's kube-proxy and k3s-controller certificates from 2.11.3 until 2.14's k3s
// deletes them, with their series and check rows), made to expire soon
// here as time does to files nothing renews; the shipped rules on a real Prometheus raise nothing
// on the healthy server, and plan mode plans nothing. Then a leaf in use, 3 days from expiry,
// alerts and is rotated.
func TestUpgradeWalk(t *testing.T) {
	t.Parallel()
	tls := "/var/lib/rancher/k3s/server/tls/"
	steps := []struct {
		p         harness.Profile
		leftovers []string // relative to /var/lib/rancher/k3s, left by the releases before
	}{
		{harness.V257, nil},
		{harness.V260, []string{"server/tls/client-cloud-controller"}},
		{harness.V275, []string{"server/tls/client-cloud-controller"}},
		{harness.V2103, []string{"server/tls/client-cloud-controller"}},
		{harness.V2113, []string{"server/tls/client-cloud-controller", "server/tls/client-k3s-controller", "server/tls/client-kube-proxy"}},
		{harness.V2123, []string{"server/tls/client-cloud-controller", "server/tls/client-k3s-controller", "server/tls/client-kube-proxy"}},
		{harness.V2138, []string{"server/tls/client-cloud-controller", "server/tls/client-k3s-controller", "server/tls/client-kube-proxy"}},
		// v1.35 deletes the server's kube-proxy and k3s-controller certificates at start (deps.go
		// cleanupLegacyCerts); 2.5's cloud-controller certificate no k3s deletes.
		{harness.V2144, []string{"server/tls/client-cloud-controller"}},
	}
	var sim *harness.Sim
	for i, step := range steps {
		if i == 0 {
			sim = engine.StartSim(t, harness.SimOptions{Profile: step.p, LeafDays: 200, CrashLoop: true})
		} else {
			sim = engine.UpgradeSim(t, sim, harness.SimOptions{Profile: step.p, CrashLoop: true})
		}
		engine.WaitLog(t, sim.ID, simReady, time.Minute)
		for j, leftover := range step.leftovers {
			reissue(t, sim, leftover, "server/tls/client-ca", []int{5, 3, -1}[j])
		}

		e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=plan", "--rotation.auto-before=14d")
		var unused []string
		for _, s := range series(e.scrape(t), "rancher_cert_exporter_certificate_unused", map[string]string{"container": sim.Name}) {
			unused = append(unused, strings.TrimSuffix(strings.TrimPrefix(s.labels["path"], "/var/lib/rancher/k3s/"), ".crt"))
		}
		sort.Strings(unused)
		if !slices.Equal(unused, step.leftovers) {
			t.Fatalf("%s: unused %v, want %v", step.p.Rancher, unused, step.leftovers)
		}
		if got := firing(t, prometheusOn(t, e.exporter), sim.Name); len(got) != 0 {
			t.Fatalf("%s, upgraded from %s: the shipped rules raise %v on a healthy server", step.p.Rancher, steps[max(i-1, 0)].p.Rancher, got)
		}
		mfs := e.scrape(t)
		if s := series(mfs, "rancher_cert_exporter_auto_rotation_next_timestamp_seconds", map[string]string{"container": sim.Name}); len(s) != 0 {
			t.Fatalf("%s: plan mode plans a rotation: %v\n%s", step.p.Rancher, s, e.log)
		}
		if strings.Contains(e.log.String(), "would rotate") || strings.Contains(e.log.String(), "would wait") {
			t.Fatalf("%s: plan mode would rotate:\n%s", step.p.Rancher, e.log)
		}
		for _, gone := range []string{"client-k3s-controller", "client-kube-proxy"} {
			if step.p.Rancher != harness.V2144.Rancher { // the release whose k3s deletes them
				break
			}
			if s := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "path": tls + gone + ".crt"}); len(s) != 0 {
				t.Fatalf("%s: a series for %s, which its k3s deleted: %v", step.p.Rancher, gone, s)
			}
			if out, _ := runCheck(t, "--rancher.container", sim.Name); strings.Contains(out, tls+gone+".crt") {
				t.Fatalf("%s: check lists %s, which its k3s deleted:\n%s", step.p.Rancher, gone, out)
			}
			if page := e.page(t); strings.Contains(page, `tls/</span><wbr><span class="seg">`+gone+".crt") { // the agent has its own
				t.Fatalf("%s: the status page lists %s, which its k3s deleted", step.p.Rancher, gone)
			}
		}
		for _, n := range series(mfs, "rancher_cert_exporter_certificate_names_covered", map[string]string{"container": sim.Name}) {
			if n.value != 1 {
				t.Fatalf("%s: %s does not cover its names", step.p.Rancher, n.labels["path"])
			}
		}
		t.Logf("%s: unused %v, no alert, nothing planned", step.p.Rancher, unused)
	}

	// A leaf in use on the upgraded server, 3 days from expiry: it alerts, and is rotated.
	reissue(t, sim, "server/tls/client-admin", "server/tls/client-ca", 3)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	got := firing(t, prometheusOn(t, e.exporter), sim.Name)
	for _, want := range []string{"K3sCertificateExpiringCritical " + tls + "client-admin.crt", "K3sCertificateExpiringSoon " + tls + "client-admin.crt"} {
		if !slices.Contains(got, want) {
			t.Fatalf("alerts %v, want %s", got, want)
		}
	}
	rep := e.rotate(t, sim.Name, "")
	if rep.State != rotation.Succeeded || rep.Strategy != rotation.Restart {
		t.Fatalf("rotation of the upgraded %s: %+v", steps[len(steps)-1].p.Rancher, rep)
	}
	after := copyTree(t, sim.Name)
	if _, na := opensslDates(t, filepath.Join(after, "server/tls/client-admin.crt")); na.Before(time.Now().Add(364 * day)) {
		t.Fatalf("client-admin.crt expires %s after the rotation", na)
	}
	for _, leftover := range steps[len(steps)-1].leftovers {
		if _, err := os.Stat(filepath.Join(after, leftover+".crt")); err != nil {
			t.Errorf("the rotation removed the leftover %s: %v", leftover, err)
		}
	}
}
