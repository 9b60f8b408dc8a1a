package collector

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/enginetest"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// hostileNames are file names an attacker or a careless operator can give a certificate file.
var hostileNames = map[string]bool{ // name → whether it can be a label value
	"bad\xff\xfename.crt":   false,
	"new\nline.crt":         true,
	`quo"te.crt`:            true,
	`back\slash.crt`:        true,
	"\x1b[2J\x1b[Hansi.crt": true,
}

// TestHostileFileNamesNeverBlindTheScrape: one file whose name is not valid UTF-8, in a watched
// container or on the host, is a read error (invalid_name) and never a label; the scrape stays
// valid for Prometheus (its own parser and promtool), and every other series — the unused marks
// of a 2.11 server's leftovers among them — stays.
func TestHostileFileNamesNeverBlindTheScrape(t *testing.T) {
	notAfter := time.Now().Add(200 * 24 * time.Hour).Truncate(time.Second)
	files := map[string][]byte{
		rancher.ServerTLSDir + "/client-admin.crt":      certPEM(t, "system:admin", 1, notAfter, false),
		rancher.ServerTLSDir + "/client-kube-proxy.crt": certPEM(t, "system:kube-proxy", 2, notAfter, false), // left by 2.10
	}
	host := t.TempDir()
	for name := range hostileNames {
		files[rancher.ServerTLSDir+"/"+name] = certPEM(t, "hostile", 3, notAfter, false)
		write(t, filepath.Join(host, name), certPEM(t, "hostile", 4, notAfter, false))
	}
	write(t, filepath.Join(host, "good.crt"), certPEM(t, "good", 5, notAfter, false))
	eng := enginetest.New(&enginetest.Container{ID: "c1", Name: "rancher", Image: "rancher/rancher:v2.11.3",
		Env:   []string{"CATTLE_SERVER_VERSION=v2.11.3", "CATTLE_K3S_VERSION=v1.32.1+k3s1"},
		State: container.StateExited, Files: files})
	c := New(Config{Engine: eng, FilePatterns: []string{host}, Docker: DockerConfig{Discover: true}}, promslog.NewNopLogger())
	text := scrape(t, c.Handler(prometheus.NewRegistry(), promslog.NewNopLogger()))

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the scrape: %v", err)
	}
	paths := map[string]bool{}
	for _, m := range families["cert_not_after_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "path" {
				paths[l.GetValue()] = true
			}
		}
	}
	for name, label := range hostileNames {
		for _, p := range []string{rancher.ServerTLSDir + "/" + name, filepath.Join(host, name)} {
			if paths[p] != label {
				t.Errorf("series for %q: %v, want %v", p, paths[p], label)
			}
		}
	}
	for _, p := range []string{rancher.ServerTLSDir + "/client-admin.crt", rancher.ServerTLSDir + "/client-kube-proxy.crt", filepath.Join(host, "good.crt")} {
		if !paths[p] {
			t.Errorf("no series for %s beside the hostile names", p)
		}
	}
	if !strings.Contains(text, `rancher_cert_exporter_certificate_unused{container="rancher",path="`+rancher.ServerTLSDir+`/client-kube-proxy.crt",source="k3s"} 1`) {
		t.Error("the unused mark of the 2.10 leftover is gone")
	}
	snap := c.Current(t.Context())
	invalid := 0
	for _, e := range snap.Errors() {
		if readerr.ReasonOf(e.Err) == readerr.InvalidName {
			invalid++
			if !strings.Contains(e.Path, `bad\xff\xfename.crt`) || !strings.Contains(e.Err.Error(), `bad\xff\xfename.crt`) {
				t.Errorf("the error does not name the file escaped: %q: %v", e.Path, e.Err)
			}
		}
	}
	if invalid != 2 {
		t.Errorf("%d invalid_name errors, want 2 (the container's file and the host's): %v", invalid, snap.Errors())
	}
	for _, reason := range []string{`rancher_cert_exporter_read_errors_total{reason="invalid_name",source="k3s"} 1`, `rancher_cert_exporter_read_errors_total{reason="invalid_name",source="file"} 1`} {
		if !strings.Contains(text, reason) {
			t.Errorf("no %s in the scrape", reason)
		}
	}
	if !model.LabelValue(text).IsValid() {
		t.Error("the scrape is not valid UTF-8")
	}
	cmd := exec.Command(testenv.Tool(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestNamesEachCertificateMustCover: of a 2.14.0 server upgraded from 2.13, 6443's certificate
// covers the kubeconfig's host, localhost and the kubernetes Service; the internal listener's
// lacks the rancher-internal Service's ClusterIP (rancher/rancher#54407); the UI's covers the
// host of server-url. On 2.3 the kubeconfig names localhost, and without the Service's address
// only what is known is checked.
func TestNamesEachCertificateMustCover(t *testing.T) {
	info := func(sans ...string) *certs.Info { return &certs.Info{SANs: sans} }
	c214 := rancher.Container{Name: "r", Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.14.0"})}
	snap := Snapshot{Sources: []SourceResult{
		{Container: "r", Source: SourceK3s, Certs: []CertFile{
			{Container: "r", Source: SourceK3s, Path: rancher.ServerTLSDir + "/dynamic-cert.json", Cert: info("kubernetes", "localhost", "10.43.0.1", "127.0.0.1")},
			{Container: "r", Source: SourceK3s, Path: rancher.ServerTLSDir + "/client-admin.crt", Cert: info()},
		}},
		{Container: "r", Source: SourceSecret, Certs: []CertFile{
			{Container: "r", Source: SourceSecret, Path: rancher.InternalCertSecret, Cert: info("localhost", "127.0.0.1", "10.43.12.7")},
			{Container: "r", Source: SourceSecret, Path: "cattle-system/serving-cert/tls.crt", Cert: info("rancher.local")},
		}},
		{Container: "r", Source: SourceUI, Certs: []CertFile{{Container: "r", Source: SourceUI, Path: "https://127.0.0.1:443", Cert: info("*.example.com")}}},
		{Container: "r", Source: SourceSetting, Settings: &Settings{ServerURL: "https://rancher.example.com"}},
		{Container: "r", Source: SourceService, Services: map[string]string{"default/kubernetes": "10.43.0.1", "cattle-system/rancher-internal": "10.43.187.204"}},
	}}
	got := map[string][]string{}
	for _, n := range snap.Names(c214) {
		var missing []string
		for _, m := range n.Missing {
			missing = append(missing, m.Name)
		}
		got[n.Source+" "+n.Path] = missing
	}
	want := map[string][]string{
		"k3s " + rancher.ServerTLSDir + "/dynamic-cert.json": nil,
		"secret " + rancher.InternalCertSecret:               {"10.43.187.204"},
		"ui https://127.0.0.1:443":                           nil, // a wildcard covers the host
	}
	if len(got) != len(want) {
		t.Fatalf("checked %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || strings.Join(g, ",") != strings.Join(w, ",") {
			t.Errorf("%s: missing %v, want %v", k, g, w)
		}
	}

	c23 := rancher.Container{Name: "old", Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.3.1"})}
	snap = Snapshot{Sources: []SourceResult{{Container: "old", Source: SourceListener, Certs: []CertFile{
		{Container: "old", Source: SourceListener, Path: "kube-system/tls-config", Cert: info("localhost")}}}}}
	checks := snap.Names(c23)
	if len(checks) != 1 || !checks[0].Covered() || len(checks[0].Names) != 1 || checks[0].Names[0].Name != "localhost" {
		t.Errorf("2.3's listener without the kubernetes Service's address: %+v", checks)
	}
}
