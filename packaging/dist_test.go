// Package packaging holds what `make dist` packs beside the binary — the systemd unit, its
// defaults file, the Debian copyright and lintian overrides, nfpm's configuration — and the test
// that builds the release files and checks them with the distributions' own tools.
package packaging

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
)

// run runs a command in dir and returns its combined output, failing the test on an error.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// one returns the single file of dist matching pattern.
func one(t *testing.T, dist, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dist, pattern))
	if len(m) != 1 {
		t.Fatalf("dist/%s: %v, want one file", pattern, m)
	}
	return m[0]
}

// TestDist runs make dist's script and checks what it made: lintian finds no error in the .debs,
// systemd accepts the unit as packaged, the packaged amd64 binary runs and says its version, rpm
// lists the files, the arm64 binary is an aarch64 ELF, the checksums and the SBOM hold, and a
// second run gives byte-identical files.
func TestDist(t *testing.T) {
	if !testenv.Required() {
		t.Skip("make dist builds for two platforms and packs them: run under make test (RCE_E2E=1)")
	}
	for _, tool := range [][2]string{{"lintian", "lintian"}, {"rpm", "rpm"}, {"file", "file"}, {"systemd-analyze", "systemd"}, {"dpkg-deb", "dpkg"}} {
		testenv.Tool(t, tool[0], tool[1])
	}
	root, _ := filepath.Abs("..")
	dist := filepath.Join(root, "dist")
	run(t, root, "./scripts/dist.sh")
	first, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, dist, "sha256sum", "--strict", "-c", "SHA256SUMS")
	if n := strings.Count(string(first), "\n"); n != 7 {
		t.Errorf("SHA256SUMS covers %d files, want 2 tarballs, 2 .debs, 2 .rpms and the SBOM:\n%s", n, first)
	}

	for _, deb := range []string{"*_amd64.deb", "*_arm64.deb"} {
		out, _ := exec.Command("lintian", "--tag-display-limit", "0", one(t, dist, deb)).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "E: ") {
				t.Errorf("lintian: %s", line)
			}
		}
		t.Logf("lintian %s:\n%s", deb, out)
	}

	// The unit as packaged: with the package's files and the host's units as the root (the
	// binary it starts is there), and alone, where every warning shows, with its ExecStart
	// pointing at the extracted binary.
	extracted := t.TempDir()
	run(t, root, "dpkg-deb", "-x", one(t, dist, "*_amd64.deb"), extracted)
	unit := filepath.Join(extracted, "lib/systemd/system/rancher-cert-exporter.service")
	vroot := t.TempDir()
	run(t, root, "cp", "-a", extracted+"/.", vroot)
	os.MkdirAll(filepath.Join(vroot, "usr/lib/systemd"), 0o755)
	run(t, root, "cp", "-a", "/usr/lib/systemd/system", filepath.Join(vroot, "usr/lib/systemd/"))
	run(t, root, "cp", unit, filepath.Join(vroot, "usr/lib/systemd/system/"))
	os.MkdirAll(filepath.Join(vroot, "bin"), 0o755) // the shell of ExecStartPre, as every system has one
	run(t, root, "cp", "-L", "/bin/sh", filepath.Join(vroot, "bin/sh"))
	run(t, root, "systemd-analyze", "verify", "--root="+vroot, "rancher-cert-exporter.service")
	data, _ := os.ReadFile(unit)
	alone := filepath.Join(t.TempDir(), "rancher-cert-exporter.service")
	os.WriteFile(alone, bytes.Replace(data, []byte("/usr/bin/rancher-cert-exporter"), []byte(filepath.Join(extracted, "usr/bin/rancher-cert-exporter")), 1), 0o644)
	if out := run(t, root, "systemd-analyze", "verify", alone); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify warns:\n%s", out)
	}
	for _, want := range []string{"EnvironmentFile=-/etc/default/rancher-cert-exporter", "ExecStart=/usr/bin/rancher-cert-exporter $ARGS",
		"SupplementaryGroups=docker", "StateDirectory=rancher-cert-exporter", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"LoadCredential=rancher-cert-exporter.token", "ExecStartPre=+/bin/sh -c 'getent group docker"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	if defaults, err := os.ReadFile(filepath.Join(extracted, "etc/default/rancher-cert-exporter")); err != nil || !bytes.Contains(defaults, []byte("\nARGS=\"\"\n")) {
		t.Errorf("/etc/default/rancher-cert-exporter: %v\n%s", err, defaults)
	}
	if name := run(t, root, "dpkg-deb", "-f", one(t, dist, "*_amd64.deb"), "Package"); strings.TrimSpace(name) != "rancher-cert-exporter" {
		t.Errorf("package name %q", name)
	}
	if rec := run(t, root, "dpkg-deb", "-f", one(t, dist, "*_amd64.deb"), "Recommends"); strings.TrimSpace(rec) != "docker.io | docker-ce" {
		t.Errorf("Recommends: %q", rec)
	}
	control := t.TempDir()
	run(t, root, "dpkg-deb", "-e", one(t, dist, "*_amd64.deb"), control)
	for packaged, script := range map[string]string{"postinst": "deb-postinst", "prerm": "deb-prerm", "postrm": "deb-postrm"} {
		got, err := os.ReadFile(filepath.Join(control, packaged))
		want, _ := os.ReadFile(filepath.Join(root, "packaging/scripts", script))
		if info, serr := os.Stat(filepath.Join(control, packaged)); err != nil || serr != nil || info.Mode()&0o111 == 0 || !bytes.Equal(got, want) {
			t.Errorf("the .deb's %s is not packaging/scripts/%s, executable: %v", packaged, script, err)
		}
	}
	version := run(t, root, filepath.Join(extracted, "usr/bin/rancher-cert-exporter"), "--version")
	revision := strings.TrimSpace(run(t, root, "git", "rev-parse", "HEAD"))
	if !strings.Contains(version, "revision: "+revision) || !regexp.MustCompile(`version \d`).MatchString(version) {
		t.Errorf("--version of the packaged binary:\n%s", version)
	}

	for rpm, arch := range map[string]string{"*.x86_64.rpm": "x86_64", "*.aarch64.rpm": "aarch64"} {
		file := one(t, dist, rpm)
		list := run(t, root, "rpm", "-qpl", file)
		for _, want := range []string{"/usr/bin/rancher-cert-exporter", "/usr/lib/systemd/system/rancher-cert-exporter.service", "/etc/default/rancher-cert-exporter"} {
			if !strings.Contains(list, want+"\n") {
				t.Errorf("%s lacks %s:\n%s", rpm, want, list)
			}
		}
		if got := run(t, root, "rpm", "-qp", "--qf", "%{ARCH}", file); got != arch {
			t.Errorf("%s: arch %s", rpm, got)
		}
		if rec := run(t, root, "rpm", "-qp", "--recommends", file); strings.TrimSpace(rec) != "(docker-ce or moby-engine or docker)" {
			t.Errorf("%s recommends %q", rpm, rec)
		}
		scripts := run(t, root, "rpm", "-qp", "--scripts", file)
		for phase, script := range map[string]string{"postinstall": "rpm-post", "preuninstall": "rpm-preun", "postuninstall": "rpm-postun"} {
			want, _ := os.ReadFile(filepath.Join(root, "packaging/scripts", script))
			if !strings.Contains(scripts, phase+" scriptlet") || !strings.Contains(scripts, strings.TrimSpace(string(want))) {
				t.Errorf("%s: the %s scriptlet is not packaging/scripts/%s:\n%s", rpm, phase, script, scripts)
			}
		}
		if cfg := run(t, root, "rpm", "-qpc", file); strings.TrimSpace(cfg) != "/etc/default/rancher-cert-exporter" {
			t.Errorf("%s: config files %q", rpm, cfg)
		}
	}

	armDir := t.TempDir()
	run(t, root, "tar", "-xzf", one(t, dist, "*_linux_arm64.tar.gz"), "-C", armDir)
	bins, _ := filepath.Glob(filepath.Join(armDir, "*", "rancher-cert-exporter"))
	if len(bins) != 1 {
		t.Fatalf("arm64 tarball: %v", bins)
	}
	for _, f := range []string{"LICENSE", "README.md"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(bins[0]), f)); err != nil {
			t.Errorf("arm64 tarball: %v", err)
		}
	}
	if out := run(t, root, "file", bins[0]); !strings.Contains(out, "ARM aarch64") || !strings.Contains(out, "statically linked") {
		t.Errorf("arm64 binary: %s", out)
	}

	var sbom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct{ Name string }
	}
	data, _ = os.ReadFile(filepath.Join(dist, "sbom.cdx.json"))
	if err := json.Unmarshal(data, &sbom); err != nil || sbom.BOMFormat != "CycloneDX" || !strings.Contains(string(data), `"github.com/prometheus/client_golang"`) {
		t.Errorf("sbom.cdx.json: %v, format %q, %d components", err, sbom.BOMFormat, len(sbom.Components))
	}

	run(t, root, "./scripts/dist.sh")
	if second, _ := os.ReadFile(filepath.Join(dist, "SHA256SUMS")); !bytes.Equal(first, second) {
		t.Errorf("a second make dist differs:\n%s\n%s", first, second)
	}
}
