package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
)

// runScript runs a maintainer script as dpkg or rpm would, with stand-ins for systemctl,
// deb-systemd-helper, deb-systemd-invoke and getent that record their arguments, on a host where
// systemd runs (a mount namespace whose /run holds /run/systemd/system) or does not. It returns
// the calls, one a line, and what the script printed.
func runScript(t *testing.T, script string, systemd, dockerGroup bool, args ...string) (calls []string, out string) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the maintainer scripts run in a mount namespace of their own, which needs root")
	}
	unshare := testenv.Tool(t, "unshare", "util-linux")
	bin, log := t.TempDir(), filepath.Join(t.TempDir(), "calls")
	for _, tool := range []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke", "getent"} {
		body := "#!/bin/sh\necho \"" + tool + " $*\" >>" + log + "\n"
		switch {
		case tool == "getent" && !dockerGroup:
			body += "exit 2\n"
		case tool == "deb-systemd-helper":
			body += "[ \"$1\" = --quiet ] && [ \"$2\" = was-enabled ] && exit 0\n" // never disabled by the admin: dpkg's default
		}
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	setup := "mount -t tmpfs tmpfs /run"
	if systemd {
		setup += " && mkdir -p /run/systemd/system"
	}
	cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c",
		setup + ` && PATH="$0:$PATH" exec sh "$@"`, bin, filepath.Join("scripts", script)}, args...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, b)
	}
	data, _ := os.ReadFile(log)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" && !strings.HasPrefix(line, "getent") {
			calls = append(calls, line)
		}
	}
	return calls, string(b)
}

// TestMaintainerScripts: the packages handle the service as dh_installsystemd and the rpm
// systemd macros do — systemd reloads its units, an install enables and starts the service, an
// upgrade restarts it, a removal stops it — tell systemd nothing where it does not run, and say
// at install when the docker group the unit needs is missing.
func TestMaintainerScripts(t *testing.T) {
	const unit = "rancher-cert-exporter.service"
	for _, tc := range []struct {
		name, script string
		args         []string
		want         []string
	}{
		{"deb install", "deb-postinst", []string{"configure"}, []string{"deb-systemd-helper unmask " + unit, "deb-systemd-helper --quiet was-enabled " + unit,
			"deb-systemd-helper enable " + unit, "systemctl --system daemon-reload", "deb-systemd-invoke start " + unit}},
		{"deb upgrade", "deb-postinst", []string{"configure", "0.0.0+git1"}, []string{"deb-systemd-helper unmask " + unit, "deb-systemd-helper --quiet was-enabled " + unit,
			"deb-systemd-helper enable " + unit, "systemctl --system daemon-reload", "deb-systemd-invoke restart " + unit}},
		{"deb remove", "deb-prerm", []string{"remove"}, []string{"deb-systemd-invoke stop " + unit}},
		{"deb upgrade, old prerm", "deb-prerm", []string{"upgrade", "0.0.0+git2"}, nil},
		{"deb removed", "deb-postrm", []string{"remove"}, []string{"systemctl --system daemon-reload", "deb-systemd-helper mask " + unit}},
		{"deb purge", "deb-postrm", []string{"purge"}, []string{"systemctl --system daemon-reload", "deb-systemd-helper purge " + unit, "deb-systemd-helper unmask " + unit}},
		{"rpm install", "rpm-post", []string{"1"}, []string{"systemctl daemon-reload", "systemctl enable " + unit, "systemctl start " + unit}},
		{"rpm upgrade, new post", "rpm-post", []string{"2"}, []string{"systemctl daemon-reload"}},
		{"rpm erase", "rpm-preun", []string{"0"}, []string{"systemctl --no-reload disable --now " + unit}},
		{"rpm upgrade, old preun", "rpm-preun", []string{"1"}, nil},
		{"rpm upgrade, old postun", "rpm-postun", []string{"1"}, []string{"systemctl daemon-reload", "systemctl try-restart " + unit}},
		{"rpm erased", "rpm-postun", []string{"0"}, []string{"systemctl daemon-reload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, out := runScript(t, tc.script, true, true, tc.args...)
			if !slices.Equal(calls, tc.want) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.TrimSpace(out) != "" {
				t.Errorf("printed %q", out)
			}
		})
	}
	t.Run("without systemd", func(t *testing.T) { // a chroot, a container build
		for script, args := range map[string][]string{"deb-postinst": {"configure"}, "deb-prerm": {"remove"}, "deb-postrm": {"remove"}, "rpm-post": {"1"}, "rpm-postun": {"1"}} {
			calls, _ := runScript(t, script, false, true, args...)
			for _, c := range calls {
				if strings.Contains(c, "daemon-reload") || strings.Contains(c, "invoke") || strings.Contains(c, " start ") {
					t.Errorf("%s without systemd: %s", script, c)
				}
			}
		}
	})
	t.Run("no docker group", func(t *testing.T) {
		for script, args := range map[string][]string{"deb-postinst": {"configure"}, "rpm-post": {"1"}} {
			if _, out := runScript(t, script, true, false, args...); !strings.Contains(out, "there is no docker group yet; install Docker") {
				t.Errorf("%s says %q, want the missing docker group named", script, out)
			}
		}
	})
}

// TestUnitSaysWhenTheDockerGroupIsMissing runs the unit's ExecStartPre as systemd would (its
// command line, as root): without the docker group it fails with a line that says so, with it
// it passes quietly.
func TestUnitSaysWhenTheDockerGroupIsMissing(t *testing.T) {
	unit, err := os.ReadFile("rancher-cert-exporter.service")
	if err != nil {
		t.Fatal(err)
	}
	var script string
	for _, line := range strings.Split(string(unit), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStartPre=+/bin/sh -c '"); ok {
			script = strings.TrimSuffix(rest, "'")
		}
	}
	if script == "" {
		t.Fatal("the unit has no ExecStartPre=+/bin/sh -c '...'")
	}
	for _, exists := range []bool{false, true} {
		bin := t.TempDir()
		code := "2"
		if exists {
			code = "0"
		}
		os.WriteFile(filepath.Join(bin, "getent"), []byte("#!/bin/sh\n[ \"$*\" = \"group docker\" ] || exit 9\nexit "+code+"\n"), 0o755)
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		switch {
		case exists && (err != nil || len(out) != 0):
			t.Errorf("with the docker group: %v %q", err, out)
		case !exists && (err == nil || !strings.Contains(string(out), "the group docker does not exist: install Docker")):
			t.Errorf("without the docker group: %v %q", err, out)
		}
	}
}
