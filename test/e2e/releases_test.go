package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// TestExporterKnowsEachRelease runs one simulated server of every release next to each other:
// the exporter reports each one's versions, renewal mode and windows as the field table has
// them, and exactly that release's certificate files, equal to openssl.
func TestExporterKnowsEachRelease(t *testing.T) {
	sims, _ := fleet(t)
	e := startExporter(t, nil) // discovery
	mfs := e.scrape(t)
	e.checkMetrics(t)
	for _, p := range harness.Profiles {
		sim, r := sims[p.Rancher], releaseOf(t, p)
		t.Run(p.Rancher, func(t *testing.T) {
			renewal, window, serving := "never", 0, 0
			if r.windowDays > 0 {
				renewal, window, serving = "on-start", r.windowDays*86400, r.windowDays*86400
			}
			if r.servingFromSecret {
				serving = 0
			}
			info := series(mfs, "rancher_cert_exporter_rancher_info", map[string]string{"container": sim.Name})
			if len(info) != 1 || info[0].value != 1 || info[0].labels["rancher_version"] != p.Rancher ||
				info[0].labels["k3s_version"] != p.K3s || info[0].labels["renewal"] != renewal {
				t.Errorf("rancher_info %v, want %s %s %s", info, p.Rancher, p.K3s, renewal)
			}
			if v := value(t, mfs, "rancher_cert_exporter_k3s_renewal_window_seconds", map[string]string{"container": sim.Name}); v != float64(window) {
				t.Errorf("renewal window %v, want %d", v, window)
			}
			if v := value(t, mfs, "rancher_cert_exporter_k3s_serving_renewal_window_seconds", map[string]string{"container": sim.Name}); v != float64(serving) {
				t.Errorf("serving renewal window %v, want %d", v, serving)
			}
			assertTreeMatchesOpenSSL(t, e, sim)
		})
	}
}

// TestScrapeOfBulkyReleaseMovesLittle counts what the engine sends for the tree reads of a
// 2.5.7 server whose agent directory holds 256 MiB of containerd layers: the certificates only.
func TestScrapeOfBulkyReleaseMovesLittle(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V257})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	if n := archiveBytes(t, sim.Name, "/var/lib/rancher/k3s/agent"); n < 256<<20 {
		t.Fatalf("the agent directory streams %d bytes, want the bulk there", n)
	}
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--rancher.container", sim.Name) // its answering status page read the tree
	assertTreeMatchesOpenSSL(t, e, sim)
	moved := proxy.bytes.Load() // everything since the exporter started
	reads := value(t, e.scrape(t), "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name})
	t.Logf("%s: %v tree reads, %d archive calls, %d bytes from the engine", sim.Name, reads, proxy.archives.Load(), moved)
	if reads < 1 || moved == 0 || float64(moved) > reads*(1<<20) {
		t.Fatalf("%v tree reads moved %d bytes through the archive endpoint, want under 1 MiB each", reads, moved)
	}
}

// TestRotateAutoPerRelease rotates an expired server of every release with no strategy given:
// auto restarts where the release renews on start, and uses leaf on 2.3 and on 2.4 and 2.5.7,
// whose serving certificate a start does not renew — deleting kube-system/k3s-serving there.
func TestRotateAutoPerRelease(t *testing.T) {
	t.Parallel()
	for _, p := range harness.Profiles {
		t.Run(p.Rancher, func(t *testing.T) {
			t.Parallel()
			r := releaseOf(t, p)
			// 2.3 crash-loops; a renewing release would renew itself on its next start, so it
			// is caught stopped after the failed first start.
			sim := engine.StartSim(t, harness.SimOptions{Profile: p, LeafDays: -2, CrashLoop: r.windowDays == 0 || r.servingFromSecret,
				Env: []string{"SIM_WAIT_INTERVAL=200ms"}})
			if r.servingFromSecret {
				waitCount(t, sim, "certificate has expired", 2) // leaves renewed by a restart, serving certificate not
			} else {
				engine.WaitLog(t, sim.ID, "FATA starting tls server", 30*time.Second)
			}
			before := copyTree(t, sim.Name)
			keys := fileHashes(t, before, ".key")
			backups := t.TempDir()
			out, code := runRotateCLI(t, "rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", backups, "--rotation.settle-time", "2s")
			rep := decodeReport(t, out)

			switch {
			case r.servingFromSecret:
				assertServingRecovered(t, sim, rep, "delete-secret:ok stop:ok remove:ok start:ok verify:ok")
			case r.windowDays == 0:
				if rep.Strategy != rotation.AllCerts || !strings.Contains(rep.Reason, "never renews") || !strings.Contains(rep.Reason, "ListenerConfig") {
					t.Errorf("auto on %s chose %s: %s", p.Rancher, rep.Strategy, rep.Reason)
				}
			default:
				want := fmt.Sprintf("renews certificates within %d-day", r.windowDays)
				if rep.Strategy != rotation.Restart || !strings.Contains(rep.Reason, want) {
					t.Errorf("auto on %s chose %s: %s, want restart saying %q", p.Rancher, rep.Strategy, rep.Reason, want)
				}
			}
			if code != 0 || rep.State != rotation.Succeeded || rep.RequestedStrategy != rotation.Auto {
				t.Fatalf("auto rotation of %s: exit %d, %+v", p.Rancher, code, rep)
			}
			after := copyTree(t, sim.Name)
			for _, leaf := range r.leaves() {
				if _, na := opensslDates(t, filepath.Join(after, leaf+".crt")); na.Before(time.Now().Add(364 * day)) {
					t.Errorf("%s expires %s after the rotation", leaf, na)
				}
				verifyLeaf(t, after, leaf, r)
			}
			sameFiles(t, "keys", keys, fileHashes(t, after, ".key"), r.keys())
			if state, _ := inspect(t, sim.ID); state != "running" {
				t.Fatalf("container %s after the rotation", state)
			}
		})
	}
}

// assertServingRecovered checks a leaf rotation of a 2.4/2.5.7 server whose serving certificate
// had expired: the plan deleted kube-system/k3s-serving, the steps after the backup were
// those wanted, and 6443 now serves a fresh certificate that a real client accepts.
func assertServingRecovered(t *testing.T, sim *harness.Sim, rep rotation.Report, wantSteps string) {
	t.Helper()
	// Its webhook certificate (2.5), installed with the leaves, expired with them and is never
	// renewed: auto renews it in the same job.
	wantSecrets := "kube-system/k3s-serving"
	if slices.Contains(sim.Profile.Sim, "SIM_WEBHOOK=never") {
		wantSecrets += ",cattle-system/cattle-webhook-tls"
	}
	if rep.Strategy != rotation.Leaf || !strings.Contains(rep.Reason, "dynamic-cert.json expires within 30 days") ||
		strings.Join(rep.DeleteSecrets, ",") != wantSecrets {
		t.Fatalf("auto on %s with an expired serving certificate: %+v", sim.Profile.Rancher, rep)
	}
	var steps []string
	for _, st := range rep.Steps[2:] { // after preflight and backup
		steps = append(steps, string(st.Name)+":"+string(st.Outcome))
	}
	if got := strings.Join(steps, " "); got != wantSteps {
		t.Errorf("steps after the backup: %s, want %s", got, wantSteps)
	}
	if verify := rep.Steps[len(rep.Steps)-1]; !strings.Contains(verify.Detail, "6443 serves a verified certificate valid until") {
		t.Errorf("verify did not check the served certificate: %+v", verify)
	}
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "get", "secret", "-n", "kube-system", "k3s-serving", "-o", "jsonpath={.data.tls\\.crt}").Output()
	if err != nil {
		t.Fatalf("kubectl against the renewed serving certificate: %v", err)
	}
	pemFile := filepath.Join(t.TempDir(), "serving.crt")
	data, _ := base64.StdEncoding.DecodeString(string(out))
	os.WriteFile(pemFile, data, 0o644)
	if _, na := opensslDates(t, pemFile); na.Before(time.Now().Add(364 * day)) {
		t.Errorf("k3s-serving expires %s after the rotation", na)
	}
}

// TestRotateServingSecretAfterTheStart: a stopped 2.4 server whose serving certificate expired
// has no API to delete the secret through before the stop, so the rotation deletes it after
// the start and starts once more.
func TestRotateServingSecretAfterTheStart(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V24, LeafDays: -2, CrashLoop: true, Env: []string{"SIM_WAIT_INTERVAL=200ms"}})
	waitCount(t, sim, "certificate has expired", 2)
	docker(t, "stop", "-t", "10", sim.Name)
	keys := fileHashes(t, copyTree(t, sim.Name), ".key")
	out, code := runRotateCLI(t, "rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", t.TempDir(), "--rotation.settle-time", "2s")
	rep := decodeReport(t, out)
	if code != 0 || rep.State != rotation.Succeeded {
		t.Fatalf("rotation of a stopped 2.4 server: exit %d, %+v", code, rep)
	}
	assertServingRecovered(t, sim, rep, "delete-secret:ok stop:ok remove:ok start:ok delete-secret:ok stop:ok remove:ok start:ok verify:ok")
	if first := rep.Steps[2]; !strings.Contains(first.Detail, "deleting after the start") {
		t.Errorf("first delete-secret step: %+v", first)
	}
	sameFiles(t, "keys", keys, fileHashes(t, copyTree(t, sim.Name), ".key"), releaseOf(t, harness.V24).keys())
}
