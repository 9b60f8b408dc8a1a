package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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

// TestSimulatorTree checks each release's tree against the field: its files, validity, chains
// and, from 2.5, the bulk of containerd's state beside the agent's certificates.
// TestSimulatorTree holds the tree each simulated release writes at its first start — modelled on
// its k3s's source — to the exporter's table of release file sets, file by file; and checks what
// the files hold: CAs ten years, leaves 100 days (as installed), each leaf chained to a CA of the
// tree and sharing its notBefore, the keys, the agent's CA copies, containerd's bulk, 2.0-2.2's
// leftovers on 2.3, the 6443 certificate and the UI's.
func TestSimulatorTree(t *testing.T) {
	t.Parallel()
	sims, started := fleet(t)
	for _, p := range harness.Profiles {
		t.Run(p.Rancher, func(t *testing.T) {
			t.Parallel()
			r := releaseOf(t, p)
			sim := sims[p.Rancher]
			root := copyTree(t, sim.Name)

			var got, want []string
			for _, f := range treeFiles(t, root) {
				if strings.HasSuffix(f, ".crt") || strings.HasSuffix(f, "dynamic-cert.json") {
					got = append(got, strings.TrimSuffix(f, ".crt"))
				}
			}
			for f := range r.files {
				want = append(want, f)
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("certificate files of the simulated %s (k3s %s):\n%s\nthe exporter's table:\n%s", p.Rancher, p.K3s, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, f := range append(r.cas(), r.leaves()...) {
				if _, err := os.Stat(filepath.Join(root, f+".key")); err != nil {
					t.Errorf("%s has no key: %v", f, err)
				}
			}
			for _, ca := range r.cas() {
				nb, na := opensslDates(t, filepath.Join(root, ca+".crt"))
				if na.Sub(nb) != 3650*day {
					t.Errorf("%s: CA valid %s, want 3650 days", ca, na.Sub(nb))
				}
			}
			for _, leaf := range r.leaves() {
				crt := filepath.Join(root, leaf+".crt")
				nb, na := opensslDates(t, crt)
				if d := na.Sub(started.Add(fleetLeafDays * day)); d < -time.Second || d > 30*time.Second {
					t.Errorf("%s: notAfter %s, want 100 days after start %s", leaf, na, started)
				}
				data, _ := os.ReadFile(crt)
				if n := strings.Count(string(data), "BEGIN CERTIFICATE"); n != 2 {
					t.Errorf("%s holds %d certificates, want the leaf and its CA", leaf, n)
				}
				verifyLeaf(t, root, leaf, r)
				if caNB, _ := opensslDates(t, filepath.Join(root, r.cas()[0]+".crt")); !nb.Equal(caNB) {
					t.Errorf("%s: notBefore %s, want its CA's %s", leaf, nb, caNB)
				}
			}
			if r.agent {
				for _, name := range []string{"server-ca", "client-ca"} {
					a, _ := os.ReadFile(filepath.Join(root, "agent", name+".crt"))
					b, _ := os.ReadFile(filepath.Join(root, "server/tls", name+".crt"))
					if string(a) != string(b) {
						t.Errorf("agent/%s.crt is not a copy of server/tls/%s.crt", name, name)
					}
				}
				if n := archiveBytes(t, sim.Name, "/var/lib/rancher/k3s/agent/containerd"); n < 64<<20 {
					t.Errorf("agent/containerd streams %d bytes, want at least 64 MiB of layers", n)
				}
			}
			if out := openssl(t, "rsa", "-check", "-noout", "-in", filepath.Join(root, "server/tls/service.key")); !strings.Contains(out, "RSA key ok") {
				t.Errorf("service.key: %s", out)
			}
			for _, f := range legacyFiles {
				_, err := os.Stat(filepath.Join(root, "..", f))
				if r.legacy != (err == nil) {
					t.Errorf("%s: present %v, want %v", f, err == nil, r.legacy)
				}
			}
			if r.legacy {
				if _, na := opensslDates(t, filepath.Join(root, "../management-state/tls/localhost.crt")); na.Sub(started.Add(fleetLeafDays*day)).Abs() > 30*time.Second {
					t.Errorf("legacy localhost.crt expires %s, want with the k3s leaves", na)
				}
			}

			serving := servedAPICert(t, sim)
			if !r.listenerConfig {
				if dyn := dynamicCert(t, filepath.Join(root, "server/tls/dynamic-cert.json")); openssl(t, "x509", "-noout", "-serial", "-in", dyn) != openssl(t, "x509", "-noout", "-serial", "-in", pemFile(t, serving)) {
					t.Error("6443 does not serve the certificate of dynamic-cert.json")
				}
			}
			openssl(t, "verify", "-CAfile", filepath.Join(root, "server/tls/server-ca.crt"), pemFile(t, serving))
			if na := serving.NotAfter; na.Sub(started.Add(fleetLeafDays*day)).Abs() > 30*time.Second {
				t.Errorf("6443 certificate expires %s, want with the leaves (installed together)", na)
			}

			ui := servedCert(t, sim.UIPort)
			if d := ui.NotAfter.Sub(started.Add(fleetUIDays * day)); d < -time.Second || d > 30*time.Second {
				t.Errorf("UI certificate notAfter %s, want 200 days after %s", ui.NotAfter, started)
			}
		})
	}
}

// archiveBytes is how many bytes the archive endpoint streams for a path of a container.
func archiveBytes(t *testing.T, name, src string) int64 {
	t.Helper()
	res, err := engine.Client.CopyFromContainer(context.Background(), name, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Content.Close()
	n, err := io.Copy(io.Discard, res.Content)
	if err != nil {
		t.Fatal(err)
	}
	return n
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
	t.Parallel()
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

// TestSimulatorRenewal restarts each release with leaves 100 and 30 days from expiry: a start
// renews the leaves inside the release's window (120 days from k3s v1.33.1, else 90; never on
// 2.3), and the serving certificate with them except where the listener reloads it from its
// secret (2.4 to 2.5.7). Keys never change.
func TestSimulatorRenewal(t *testing.T) {
	t.Parallel()
	for _, p := range harness.Profiles {
		for _, leafDays := range []int{100, 30} {
			t.Run(fmt.Sprintf("%s/%ddays", p.Rancher, leafDays), func(t *testing.T) {
				t.Parallel()
				r := releaseOf(t, p)
				sim := engine.StartSim(t, harness.SimOptions{Profile: p, LeafDays: leafDays})
				engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
				root := copyTree(t, sim.Name)
				keys := fileHashes(t, root, ".key")
				crts := fileHashes(t, root, ".crt")
				servingBefore := servingSerial(t, sim, root)

				restarted := time.Now()
				restart(t, sim)
				waitCount(t, sim, simReady, 2)
				root = copyTree(t, sim.Name)
				renews := leafDays < r.windowDays
				for _, leaf := range r.leaves() {
					_, na := opensslDates(t, filepath.Join(root, leaf+".crt"))
					renewed := na.Sub(restarted.Add(365*day)).Abs() < 30*time.Second
					if renewed != renews {
						t.Errorf("%s: notAfter %s after a restart: renewed %v, want %v", leaf, na, renewed, renews)
					}
					verifyLeaf(t, root, leaf, r)
				}
				if !renews {
					sameFiles(t, "certificates outside the window", crts, fileHashes(t, root, ".crt"), r.certFiles()-1)
				}
				if servingRenewed := servingSerial(t, sim, root) != servingBefore; servingRenewed != (renews && !r.servingFromSecret) {
					t.Errorf("serving certificate renewed %v, want %v", servingRenewed, renews && !r.servingFromSecret)
				}
				sameFiles(t, "keys across the restart", keys, fileHashes(t, root, ".key"), r.keys())
			})
		}
	}
}

// servingSerial is the serial of the 6443 serving certificate in the listener cache.
// servingSerial is the serial of the 6443 certificate: the one 2.3's listener serves, else the
// listener cache in the copied tree.
func servingSerial(t *testing.T, sim *harness.Sim, root string) string {
	t.Helper()
	if releaseOf(t, sim.Profile).listenerConfig {
		return servedAPICert(t, sim).SerialNumber.String()
	}
	return openssl(t, "x509", "-noout", "-serial", "-in", dynamicCert(t, filepath.Join(root, "server/tls/dynamic-cert.json")))
}

// TestSimulatorServingFromSecret: on 2.4 and 2.5.7 the listener reloads the 6443 certificate
// from kube-system/k3s-serving, so removing dynamic-cert.json alone does not renew it, and
// once it has expired (leaves renewed by a restart, rancher#29607) every start waits forever.
func TestSimulatorServingFromSecret(t *testing.T) {
	t.Parallel()
	for _, p := range []harness.Profile{harness.V24, harness.V257} {
		t.Run(p.Rancher+"/cache removed", func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{Profile: p, LeafDays: 20})
			engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
			before := servingSerial(t, sim, copyTree(t, sim.Name))
			docker(t, "stop", "-t", "10", sim.Name)
			removeFiles(t, sim, p.Image, "/var/lib/rancher/k3s/server/tls/dynamic-cert.json")
			if err := engine.StartContainer(context.Background(), sim); err != nil {
				t.Fatal(err)
			}
			waitCount(t, sim, simReady, 2)
			engine.WaitLog(t, sim.ID, "Loaded serving certificate from kube-system/k3s-serving", time.Second)
			if after := servingSerial(t, sim, copyTree(t, sim.Name)); after != before {
				t.Fatalf("serving certificate %s after removing the cache, want the secret's %s", after, before)
			}
		})
		t.Run(p.Rancher+"/expired", func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{Profile: p, LeafDays: -2, CrashLoop: true, Env: []string{"SIM_WAIT_INTERVAL=200ms"}})
			logs := waitCount(t, sim, "6443/version?timeout=30s: x509: certificate has expired or is not yet valid", 3)
			if strings.Contains(logs, simReady) {
				t.Fatal("a start with an expired serving certificate became ready")
			}
			root := copyTree(t, sim.Name)
			if _, na := opensslDates(t, filepath.Join(root, "server/tls/client-admin.crt")); na.Before(time.Now().Add(364 * day)) {
				t.Errorf("client-admin.crt expires %s: the restart should have renewed the leaves", na)
			}
			if state, _ := inspect(t, sim.ID); state != "running" {
				t.Errorf("container %s, want running (stuck, not crashing)", state)
			}
		})
	}
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

// TestSimulatorFieldFixOf23: a 2.3 server whose leaves and 6443 certificate have expired
// crash-loops; a leaf-only fix keeps the expired 6443 certificate (k3s v0.8 mints it again only for
// a new server CA), and the field fix — every *.crt removed, a start, another start — recovers it:
// k3s mints new CAs from the kept keys, the first start fails on the kubeconfig of the old CA,
// and the restart policy's start runs.
func TestSimulatorFieldFixOf23(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	logs := waitCount(t, sim, "x509: certificate has expired or is not yet valid", 2)
	if strings.Contains(logs, simReady) {
		t.Fatal("an expired 2.3 became ready")
	}
	root := copyTree(t, sim.Name)
	oldCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(root, "server/tls/server-ca.crt"))
	keys := fileHashes(t, root, ".key")
	tls := "/var/lib/rancher/k3s/server/tls/"

	// Leaves only: renewed, but 6443 still serves the expired certificate, and Rancher ends.
	docker(t, "stop", "-t", "10", sim.Name)
	var leaves []string
	for _, f := range treeFiles(t, filepath.Join(root, "server/tls")) {
		if strings.HasSuffix(f, ".crt") && !strings.HasSuffix(f, "-ca.crt") {
			leaves = append(leaves, tls+f)
		}
	}
	removeFiles(t, sim, harness.ImageV23, leaves...)
	started := time.Now()
	docker(t, "start", sim.Name)
	waitRestarts(t, sim, 2)
	logs = docker(t, "logs", "--since", started.Format(time.RFC3339Nano), sim.Name)
	if !strings.Contains(logs, "Get https://localhost:6443/api?timeout=32s: x509: certificate has expired or is not yet valid") || strings.Contains(logs, simReady) {
		t.Fatalf("after a leaf-only fix:\n%s", logs)
	}
	if _, na := opensslDates(t, filepath.Join(copyTree(t, sim.Name), "server/tls/client-admin.crt")); na.Before(time.Now().Add(364 * day)) {
		t.Fatalf("client-admin.crt expires %s after the leaf-only fix", na)
	}

	// The field fix.
	docker(t, "stop", "-t", "10", sim.Name)
	docker(t, "run", "--rm", "--label", harness.ImageLabel+"=true", "--volumes-from", sim.Name, "--entrypoint", "/bin/sh", harness.ImageV23, "-c", "rm "+tls+"*.crt")
	started = time.Now()
	docker(t, "start", sim.Name)
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	logs = docker(t, "logs", "--since", started.Format(time.RFC3339Nano), sim.Name)
	t.Logf("docker logs of the two starts after the field fix:\n%s", logs)
	if strings.Count(logs, "Starting k3s") != 2 || !strings.Contains(logs, "Get https://localhost:6443/api?timeout=32s: x509: certificate signed by unknown authority") {
		t.Fatal("want a first start that fails on the old CA's kubeconfig, then the restart policy's start")
	}
	if state, restarts := inspect(t, sim.ID); state != "running" || restarts != 1 {
		t.Fatalf("after the field fix: %s with %d restarts, want running after the restart policy's one", state, restarts)
	}
	root = copyTree(t, sim.Name)
	if newCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(root, "server/tls/server-ca.crt")); newCA == oldCA || !strings.Contains(newCA, "k3s-server-ca@") {
		t.Fatalf("server CA subject %q after the fix, was %q: want a new k3s-server-ca@<time>", newCA, oldCA)
	}
	served := servedAPICert(t, sim)
	openssl(t, "verify", "-CAfile", filepath.Join(root, "server/tls/server-ca.crt"), pemFile(t, served))
	if d := served.NotAfter.Sub(time.Now().Add(365 * day)); d.Abs() > time.Minute {
		t.Fatalf("6443 serves a certificate expiring %s after the fix, want a year out", served.NotAfter)
	}
	sameFiles(t, "keys across the CA re-creation", keys, fileHashes(t, root, ".key"), len(keys))
}

func TestSimulatorRenewsUICertificate(t *testing.T) {
	t.Parallel()
	started := time.Now()
	sim := engine.StartSim(t, harness.SimOptions{UIDays: 3, Env: []string{"SIM_UI_CHECK_INTERVAL=500ms"}})
	engine.WaitLog(t, sim.ID, "Updating TLS secret for cattle-system/serving-cert", 30*time.Second)
	ui := servedCert(t, sim.UIPort)
	if d := ui.NotAfter.Sub(started.Add(365 * day)); d < -time.Second || d > 30*time.Second {
		t.Fatalf("UI certificate notAfter %s after renewal, want a year from %s", ui.NotAfter, started)
	}
}
