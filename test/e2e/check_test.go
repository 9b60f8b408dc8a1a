package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// runCheck runs `rancher-cert-exporter check` and returns its output and exit code.
func runCheck(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(exporterBinary(t), append([]string{"check"}, args...)...)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestCheckExitCodes(t *testing.T) {
	t.Parallel()
	healthy := engine.StartSim(t, harness.SimOptions{LeafDays: 200})
	soon := engine.StartSim(t, harness.SimOptions{LeafDays: 10})
	expired := engine.StartSim(t, harness.SimOptions{LeafDays: -1, CrashLoop: true})
	engine.WaitLog(t, healthy.ID, simReady, 30*time.Second)
	engine.WaitLog(t, soon.ID, simReady, 30*time.Second)
	waitRestarts(t, expired, 1)

	for _, tc := range []struct {
		sim  string
		code int
		want string
	}{
		{healthy.Name, 0, "OK"},
		{soon.Name, 1, "WARNING"},
		{expired.Name, 2, "EXPIRED"},
		{"rce-no-such-container", 3, "UNREADABLE (container_not_found"},
	} {
		out, code := runCheck(t, "--rancher.container", tc.sim)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("check %s: exit %d, want %d with %q:\n%s", tc.sim, code, tc.code, tc.want, out)
		}
	}

	out, code := runCheck(t, "--rancher.container", soon.Name, "--output", "json", "--check.warn-days", "5", "--check.crit-days", "2")
	var rows []struct{ Path, Status, Residual string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 {
		t.Fatalf("json check: exit %d, %v:\n%s", code, err, out)
	}
	if len(rows) < releaseOf(t, soon.Profile).certFiles() || rows[0].Residual == "" {
		t.Fatalf("json check: %d rows: %v", len(rows), rows)
	}

	// Leaves 10 days from expiry with a critical threshold of 12: CRITICAL, exit 2, in the
	// table and in JSON.
	if out, code := runCheck(t, "--rancher.container", soon.Name, "--check.crit-days", "12"); code != 2 || !strings.Contains(out, "CRITICAL") {
		t.Errorf("critical threshold: exit %d:\n%s", code, out)
	}
	out, _ = runCheck(t, "--rancher.container", soon.Name, "--check.crit-days", "12", "--output", "json")
	rows = nil
	json.Unmarshal([]byte(out), &rows)
	critical := 0
	for _, r := range rows {
		if r.Status == "CRITICAL" {
			critical++
		}
	}
	if critical < len(releaseOf(t, soon.Profile).leaves()) {
		t.Errorf("json: %d CRITICAL rows, want at least the %d leaves:\n%s", critical, len(releaseOf(t, soon.Profile).leaves()), out)
	}
	// A critical threshold above the warning one is a mistake: UNKNOWN, and why.
	cmd := exec.Command(exporterBinary(t), "check", "--rancher.container", soon.Name, "--check.warn-days", "7", "--check.crit-days", "30")
	msg, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(string(msg), "the critical threshold (30 days) is above the warning one (7 days)") {
		t.Errorf("crit above warn: exit %d %v:\n%s", cmd.ProcessState.ExitCode(), err, msg)
	}
}

func TestUICertificateReadWhenExpiredAndLandingPage(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{UIDays: -2})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	served := servedCert(t, sim.UIPort)
	v := value(t, e.scrape(t), "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "ui"})
	if int64(v) != served.NotAfter.Unix() || served.NotAfter.After(time.Now()) {
		t.Fatalf("ui series %v, served expired certificate %s", v, served.NotAfter)
	}

	resp, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(page), `href="/metrics"`) {
		t.Fatalf("landing page %s lacks a link to /metrics:\n%s", resp.Status, page)
	}
}

// TestUnreadableFileAsNonRoot runs check as nobody over a directory with a file it may not
// read (root reads everything, so this needs another user).
func TestUnreadableFileAsNonRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	dir, err := os.MkdirTemp("", "rce-unreadable")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	pem := openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "/dev/null", "-subj", "/CN=readable", "-days", "90")
	os.WriteFile(filepath.Join(dir, "readable.crt"), []byte(pem), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.crt"), []byte(pem), 0o600)

	bin := filepath.Join(dir, "rce")
	data, _ := os.ReadFile(exporterBinary(t))
	os.WriteFile(bin, data, 0o755)
	cmd := exec.Command(bin, "check", "--no-rancher.discover", "--files.path", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.Output()
	if cmd.ProcessState.ExitCode() != 3 || !strings.Contains(string(out), "UNREADABLE (unreadable:") ||
		!strings.Contains(string(out), "readable.crt") || !strings.Contains(string(out), " OK") {
		t.Fatalf("check as nobody: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}
