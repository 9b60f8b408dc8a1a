package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

const day = 24 * time.Hour

const simReady = "Rancher is ready"

// copyTree copies the k3s tree of a container out with `docker cp`.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	docker(t, "cp", name+":/var/lib/rancher/k3s", dir)
	return filepath.Join(dir, "k3s")
}

func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

var (
	simCAs    = []string{"server/tls/server-ca", "server/tls/client-ca", "server/tls/request-header-ca", "server/tls/etcd/server-ca", "server/tls/etcd/peer-ca"}
	simLeaves = map[string]string{ // leaf: its CA
		"server/tls/client-admin":            "server/tls/client-ca",
		"server/tls/client-auth-proxy":       "server/tls/request-header-ca",
		"server/tls/client-controller":       "server/tls/client-ca",
		"server/tls/client-kube-apiserver":   "server/tls/client-ca",
		"server/tls/client-kube-proxy":       "server/tls/client-ca",
		"server/tls/client-scheduler":        "server/tls/client-ca",
		"server/tls/serving-kube-apiserver":  "server/tls/server-ca",
		"server/tls/etcd/server-client":      "server/tls/etcd/server-ca",
		"server/tls/etcd/peer-server-client": "server/tls/etcd/peer-ca",
		"server/tls/etcd/client":             "server/tls/etcd/server-ca",
		"agent/client-kubelet":               "server/tls/client-ca",
		"agent/serving-kubelet":              "server/tls/server-ca",
		"agent/client-kube-proxy":            "server/tls/client-ca",
	}
)

func TestSimulatorTree(t *testing.T) {
	started := time.Now()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 100, UIDays: 200})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	root := copyTree(t, sim.Name)

	want := []string{"agent/client-ca.crt", "agent/server-ca.crt", "server/tls/dynamic-cert.json", "server/tls/service.key"}
	for _, ca := range simCAs {
		want = append(want, ca+".crt", ca+".key")
	}
	for leaf := range simLeaves {
		want = append(want, leaf+".crt", leaf+".key")
	}
	sort.Strings(want)
	if got := treeFiles(t, root); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, ca := range simCAs {
		nb, na := opensslDates(t, filepath.Join(root, ca+".crt"))
		if na.Sub(nb) != 3650*day {
			t.Errorf("%s: CA valid %s, want 3650 days", ca, na.Sub(nb))
		}
	}
	for leaf, ca := range simLeaves {
		crt := filepath.Join(root, leaf+".crt")
		_, na := opensslDates(t, crt)
		if d := na.Sub(started.Add(100 * day)); d < -time.Second || d > 30*time.Second {
			t.Errorf("%s: notAfter %s, want 100 days after start %s", leaf, na, started)
		}
		data, _ := os.ReadFile(crt)
		if n := strings.Count(string(data), "BEGIN CERTIFICATE"); n != 2 {
			t.Errorf("%s holds %d certificates, want the leaf and its CA", leaf, n)
		}
		caNB, _ := opensslDates(t, filepath.Join(root, ca+".crt"))
		if nb, _ := opensslDates(t, crt); !nb.Equal(caNB) {
			t.Errorf("%s: notBefore %s, want its CA's %s", leaf, nb, caNB)
		}
		openssl(t, "verify", "-CAfile", filepath.Join(root, ca+".crt"), crt)
	}
	for _, name := range []string{"server-ca", "client-ca"} {
		a, _ := os.ReadFile(filepath.Join(root, "agent", name+".crt"))
		b, _ := os.ReadFile(filepath.Join(root, "server/tls", name+".crt"))
		if string(a) != string(b) {
			t.Errorf("agent/%s.crt is not a copy of server/tls/%s.crt", name, name)
		}
	}
	if out := openssl(t, "rsa", "-check", "-noout", "-in", filepath.Join(root, "server/tls/service.key")); !strings.Contains(out, "RSA key ok") {
		t.Errorf("service.key: %s", out)
	}

	dyn := dynamicCert(t, filepath.Join(root, "server/tls/dynamic-cert.json"))
	openssl(t, "verify", "-CAfile", filepath.Join(root, "server/tls/server-ca.crt"), dyn)

	ui := servedCert(t, sim.UIPort)
	if d := ui.NotAfter.Sub(started.Add(200 * day)); d < -time.Second || d > 30*time.Second {
		t.Errorf("UI certificate notAfter %s, want 200 days after %s", ui.NotAfter, started)
	}
}

// dynamicCert writes the tls.crt of a dynamiclistener cache to a PEM file and returns its path.
func dynamicCert(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Data map[string][]byte }
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(s.Data["tls.crt"]) == 0 || len(s.Data["tls.key"]) == 0 {
		t.Fatalf("%s lacks tls.crt or tls.key", file)
	}
	out := filepath.Join(t.TempDir(), "dynamic.crt")
	if err := os.WriteFile(out, s.Data["tls.crt"], 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// servedCert returns the leaf certificate served on a loopback port.
func servedCert(t *testing.T, port int) *x509.Certificate {
	t.Helper()
	var lastErr error
	for i := 0; i < 50; i++ {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0]
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("TLS to port %d: %v", port, lastErr)
	return nil
}

func TestSimulatorCrashLoopsWhenExpired(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -3, CrashLoop: true})
	deadline := time.Now().Add(60 * time.Second)
	restarts := 0
	for time.Now().Before(deadline) && restarts < 2 {
		in, err := engine.Client.ContainerInspect(context.Background(), sim.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		restarts = in.Container.RestartCount
		time.Sleep(500 * time.Millisecond)
	}
	if restarts < 2 {
		t.Fatalf("restart count %d after 60s, want a crash loop", restarts)
	}
	logs := engine.Logs(t, sim.ID)
	t.Logf("docker logs of a crash loop:\n%s", logs)
	if n := strings.Count(logs, "FATA starting tls server: "); n < 2 {
		t.Fatalf("%d fatal starts in the log, want one per start", n)
	}
	if !strings.Contains(logs, "x509: certificate has expired or is not yet valid") || strings.Contains(logs, simReady) {
		t.Fatal("log does not show the expired-certificate crash")
	}
}

// restart stops and starts a container and waits for a log line of the new start.
func restart(t *testing.T, sim *harness.Sim) {
	t.Helper()
	docker(t, "stop", "-t", "10", sim.Name)
	if err := engine.StartContainer(context.Background(), sim); err != nil {
		t.Fatal(err)
	}
}

func fileHashes(t *testing.T, root, suffix string) map[string]string {
	t.Helper()
	hashes := map[string]string{}
	for _, f := range treeFiles(t, root) {
		if strings.HasSuffix(f, suffix) {
			data, _ := os.ReadFile(filepath.Join(root, f))
			sum := sha256.Sum256(data)
			hashes[f] = hex.EncodeToString(sum[:])
		}
	}
	return hashes
}

// sameFiles fails unless both hash sets hold the same files with the same bytes, and at least
// minFiles of them: an empty or partial copy must not pass as "unchanged".
func sameFiles(t *testing.T, what string, before, after map[string]string, minFiles int) {
	t.Helper()
	if len(before) < minFiles {
		t.Fatalf("%s: %d files to compare, want at least %d", what, len(before), minFiles)
	}
	if !maps.Equal(before, after) {
		t.Fatalf("%s changed:\nbefore %v\nafter  %v", what, before, after)
	}
}

func TestSimulatorRenewalNeverKeepsLeaves(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Image: harness.ImageV23, LeafDays: 30})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	before := fileHashes(t, copyTree(t, sim.Name), ".crt")
	restart(t, sim)
	waitCount(t, sim, simReady, 2)
	sameFiles(t, "certificates under renewal never", before, fileHashes(t, copyTree(t, sim.Name), ".crt"), 20)
}

func TestSimulatorRenewalOnStart(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Image: harness.ImageNew, LeafDays: 30})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	root := copyTree(t, sim.Name)
	keys := fileHashes(t, root, ".key")
	_, oldNotAfter := opensslDates(t, filepath.Join(root, "server/tls/client-admin.crt"))

	restarted := time.Now()
	restart(t, sim)
	waitCount(t, sim, simReady, 2)
	root = copyTree(t, sim.Name)
	for leaf, ca := range simLeaves {
		_, na := opensslDates(t, filepath.Join(root, leaf+".crt"))
		if d := na.Sub(restarted.Add(365 * day)); d < -time.Second || d > 30*time.Second {
			t.Errorf("%s: notAfter %s after on-start renewal, want a year from %s (was %s)", leaf, na, restarted, oldNotAfter)
		}
		openssl(t, "verify", "-CAfile", filepath.Join(root, ca+".crt"), filepath.Join(root, leaf+".crt"))
	}
	sameFiles(t, "keys across re-issue", keys, fileHashes(t, root, ".key"), 19)
}

// waitCount waits until substr appears n times in the container's log.
func waitCount(t *testing.T, sim *harness.Sim, substr string, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs := engine.Logs(t, sim.ID)
		if strings.Count(logs, substr) >= n {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q appears fewer than %d times:\n%s", substr, n, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// removeFiles removes files from a stopped container's volume with a helper container from
// its own image, as an operator would by hand.
func removeFiles(t *testing.T, sim *harness.Sim, image string, paths ...string) {
	t.Helper()
	args := append([]string{"run", "--rm", "--label", harness.ImageLabel + "=true", "--volumes-from", sim.Name, "--entrypoint", "/bin/rm", image, "-f"}, paths...)
	docker(t, args...)
}

func TestSimulatorUnknownAuthorityAfterCARemoval(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Env: []string{"SIM_WAIT_INTERVAL=200ms"}})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	root := copyTree(t, sim.Name)
	oldCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(root, "server/tls/server-ca.crt"))
	keys := fileHashes(t, root, ".key")

	docker(t, "stop", "-t", "10", sim.Name)
	removeFiles(t, sim, harness.ImageV23, "/var/lib/rancher/k3s/server/tls/server-ca.crt")
	if err := engine.StartContainer(context.Background(), sim); err != nil {
		t.Fatal(err)
	}
	logs := waitCount(t, sim, "x509: certificate signed by unknown authority", 3)
	t.Logf("docker logs of the unknown-authority start:\n%s", logs)
	if strings.Count(logs, simReady) != 1 {
		t.Fatal("the start with an untrusted listener cache became ready")
	}

	restart(t, sim)
	waitCount(t, sim, simReady, 2)
	root = copyTree(t, sim.Name)
	newCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(root, "server/tls/server-ca.crt"))
	if newCA == oldCA || !strings.Contains(newCA, "k3s-server-ca@") {
		t.Fatalf("server CA subject %q after removal, was %q: want a new k3s-server-ca@<time>", newCA, oldCA)
	}
	caFile := filepath.Join(root, "server/tls/server-ca.crt")
	openssl(t, "verify", "-CAfile", caFile, dynamicCert(t, filepath.Join(root, "server/tls/dynamic-cert.json")))
	openssl(t, "verify", "-CAfile", caFile, filepath.Join(root, "server/tls/serving-kube-apiserver.crt"))
	sameFiles(t, "keys across the CA re-creation", keys, fileHashes(t, root, ".key"), 19)
}

func TestSimulatorRenewsUICertificate(t *testing.T) {
	started := time.Now()
	sim := engine.StartSim(t, harness.SimOptions{UIDays: 3, Env: []string{"SIM_UI_CHECK_INTERVAL=500ms"}})
	engine.WaitLog(t, sim.ID, "Updating TLS secret for cattle-system/serving-cert", 30*time.Second)
	ui := servedCert(t, sim.UIPort)
	if d := ui.NotAfter.Sub(started.Add(365 * day)); d < -time.Second || d > 30*time.Second {
		t.Fatalf("UI certificate notAfter %s after renewal, want a year from %s", ui.NotAfter, started)
	}
}
