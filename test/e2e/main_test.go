// Package e2e proves the simulator, the exporter and the rotation end to end through a real
// Docker engine.
//
// The tests run in parallel (t.Parallel), each on containers, ports, proxies and engines of its
// own; those that only read share one simulator of every release (fleet). A few do not run in
// parallel, and so run first, alone: those whose exporter discovers every Rancher container on
// the engine (they would see the others'), and the one that times how soon a restart shows.
package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

var engine *harness.Engine

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, &engine))
}

// docker runs the docker CLI against the harness engine.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "docker", "docker.io"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// opensslDates returns notBefore and notAfter of the first certificate in file, as openssl
// prints them.
func opensslDates(t testing.TB, file string) (notBefore, notAfter time.Time) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl", "openssl"), "x509", "-noout", "-startdate", "-enddate", "-in", file).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 %s: %v\n%s", file, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		ts, err := time.Parse("Jan _2 15:04:05 2006 MST", v)
		if err != nil {
			t.Fatalf("openssl date %q: %v", v, err)
		}
		switch k {
		case "notBefore":
			notBefore = ts
		case "notAfter":
			notAfter = ts
		}
	}
	return notBefore, notAfter
}

// openssl runs openssl and returns its output, failing the test on error.
func openssl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl", "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func itoa(n int) string { return strconv.Itoa(n) }

// secondEngine starts a private dockerd of the test's own under os.TempDir()/dir (keep the name
// short: socket paths are limited), stopped and removed when the test ends.
func secondEngine(t *testing.T, dir string) *harness.Engine {
	t.Helper()
	root := filepath.Join(os.TempDir(), dir)
	e, err := harness.StartSecondEngine(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Stop()
		os.RemoveAll(root)
	})
	return e
}

// dieWithTest ends a process the tests start when the test binary ends, also when an
// interrupt skips the cleanups.
var dieWithTest = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
