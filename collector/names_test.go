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
	prommodel "github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
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
	text := scrape(t, exposition.New(c).Handler(prometheus.NewRegistry(), promslog.NewNopLogger()))

	parser := expfmt.NewTextParser(prommodel.UTF8Validation)
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
	if !prommodel.LabelValue(text).IsValid() {
		t.Error("the scrape is not valid UTF-8")
	}
	cmd := exec.Command(testenv.Tool(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
