// Package testenv decides what a test does when what it needs is missing: a plain `go test
// ./...` skips it with one line, and under `make test` (RCE_E2E=1), which installs and starts
// everything, a missing tool fails it.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Required tells whether the end-to-end environment must be complete (make test sets RCE_E2E).
func Required() bool { return os.Getenv("RCE_E2E") != "" }

// Tool returns the path of an executable, or skips or fails the test without it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (apt-get install "+pkg+"; make test does)")
	}
	return path
}

// Missing skips the test, or fails it when the environment must be complete.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatal(why + ", and RCE_E2E is set")
	}
	t.Skip(why)
}
