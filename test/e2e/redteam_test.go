package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// TestHostileFileNamesInAContainer: files named as an attacker would name them — a name that is
// not valid UTF-8, a newline, a quote, a backslash, an escape sequence — in a watched container's
// server/tls. The scrape stays one Prometheus accepts (promtool, and its own parser); the
// invalid name is a read error (invalid_name) named escaped in the log and on the page; every
// other series, and the unused marks of 2.0–2.2's management-state/tls, stay.
func TestHostileFileNamesInAContainer(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, LeafDays: 200})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	docker(t, "exec", sim.Name, "/bin/busybox", "sh", "-c", `cd /var/lib/rancher/k3s/server/tls && for n in "$(printf 'bad\377\376name.crt')" "$(printf 'new\nline.crt')" 'quo"te.crt' 'back\slash.crt' "$(printf '\033[2Jansi.crt')"; do /bin/busybox cp client-admin.crt "$n"; done`)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	mfs := e.scrape(t) // Prometheus's own parser, validating UTF-8
	e.checkMetrics(t)
	paths := map[string]bool{}
	for _, s := range series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name}) {
		paths[s.labels["path"]] = true
	}
	dir := "/var/lib/rancher/k3s/server/tls/"
	for name, want := range map[string]bool{"bad\xff\xfename.crt": false, "new\nline.crt": true, `quo"te.crt`: true, `back\slash.crt`: true, "\x1b[2Jansi.crt": true, "client-admin.crt": true, "server-ca.crt": true} {
		if paths[dir+name] != want {
			t.Errorf("series for %q: %v, want %v", name, paths[dir+name], want)
		}
	}
	if n := len(series(mfs, "rancher_cert_exporter_certificate_unused", map[string]string{"container": sim.Name})); n != len(legacyFiles) {
		t.Errorf("%d unused marks, want management-state/tls's %d", n, len(legacyFiles))
	}
	if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "k3s", "reason": "invalid_name"}); v < 1 {
		t.Errorf("read_errors_total{reason=invalid_name} = %v", v)
	}
	const escaped = `bad\xff\xfename.crt`
	if !strings.Contains(e.log.String(), escaped) {
		t.Errorf("the log does not name the file escaped:\n%s", e.log)
	}
	if page := e.page(t); !strings.Contains(page, escaped) || strings.Contains(page, "\xff") {
		t.Errorf("the status page does not name the file escaped, or holds the raw bytes")
	}
	if out, code := runCheck(t, "--rancher.container", sim.Name); !strings.Contains(out, escaped) || !strings.Contains(out, "invalid_name") || code != 3 {
		t.Errorf("check: exit %d\n%s", code, out)
	}
}

// hostileCert writes a certificate whose subject is cn into dir/name.
func hostileCert(t *testing.T, dir, name, cn string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(3 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckPrintsNoEscapeSequences: certificates whose subject clears the screen and paints
// ALL OK, or sets the terminal's title, and files named with a newline or a right-to-left
// override: check prints each escaped, one row a line, and still exits CRITICAL.
func TestCheckPrintsNoEscapeSequences(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hostileCert(t, dir, "paint.crt", "\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m")
	hostileCert(t, dir, "title.crt", "\x1b]0;all good\a")
	hostileCert(t, dir, "new\nline.crt", "line")
	hostileCert(t, dir, "evil\u202egpj.crt", "rtl")
	out, code := runCheck(t, "--no-rancher.discover", "--files.path", dir)
	for _, raw := range []string{"\x1b", "\a", "\u202e", "new\nline"} {
		if strings.Contains(out, raw) {
			t.Errorf("check prints %q raw:\n%s", raw, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 5 || code != 2 {
		t.Errorf("exit %d, %d lines for 4 certificates and the header:\n%s", code, lines, out)
	}
	for _, want := range []string{`\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m`, `\x1b]0;all good\x07`, `new\nline.crt`, `evil\u202egpj.crt`} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not show %s:\n%s", want, out)
		}
	}
}

// TestTokenFileRefusedAtStart: a token file that is a named pipe, or holds too short a token, is
// refused at once, saying why — never waited on for ever, deaf to SIGTERM.
func TestTokenFileRefusedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo, weak := filepath.Join(dir, "fifo"), filepath.Join(dir, "weak")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(weak, []byte("e2e-rotation-token\n"), 0o600)
	for file, says := range map[string]string{fifo: "not a regular file", weak: "holds at most 108 bits, under 128: make one with openssl rand -hex 32"} {
		cmd := exec.Command(exporterBinary(t), "--web.listen-address=127.0.0.1:0", "--no-rancher.discover", "--rancher.container", "any", "--rotation.token-file", file)
		cmd.SysProcAttr = dieWithTest
		done := make(chan error, 1)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out.String(), says) {
				t.Errorf("%s: %v, want exit 2 saying %q:\n%s", filepath.Base(file), err, says, out.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s: the exporter still starts after 10 s:\n%s", filepath.Base(file), out.String())
		}
	}
}

// TestLegacyFilesStayVisibleAfterAnUpgrade: a 2.3 server whose history began on 2.0–2.2, upgraded
// to 2.4 by Rancher's procedure: management-state/tls, which nothing deletes, is still exported,
// as unused, as the README promises of every leftover.
func TestLegacyFilesStayVisibleAfterAnUpgrade(t *testing.T) {
	t.Parallel()
	old := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, LeafDays: 200})
	engine.WaitLog(t, old.ID, simReady, 30*time.Second)
	sim := engine.UpgradeSim(t, old, harness.SimOptions{Profile: harness.V24})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	mfs := e.scrape(t)
	for _, f := range legacyFiles {
		path := "/var/lib/rancher/" + f
		if len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "path": path})) != 1 ||
			value(t, mfs, "rancher_cert_exporter_certificate_unused", map[string]string{"container": sim.Name, "path": path}) != 1 {
			t.Errorf("%s is not exported as unused on the upgraded 2.4", path)
		}
	}
	if out, _ := runCheck(t, "--rancher.container", sim.Name); !strings.Contains(out, "management-state/tls/localhost.crt") || !strings.Contains(out, "left by Rancher 2.0–2.2") {
		t.Errorf("check does not list management-state/tls as left by 2.0–2.2:\n%s", out)
	}
}
