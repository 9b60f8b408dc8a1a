package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

const token = "e2e0rotation0token0f3a9c1d7b5e2f8a4c6d0b9e1f7a3c5d8b2e4f6a0c9d1e3f"

// rotationExporter is the exporter with the rotation API on, a 0600 token file and its own
// backup directory.
type rotationExporter struct {
	*exporter
	backups string
}

func startRotationExporter(t *testing.T, env []string, args ...string) *rotationExporter {
	t.Helper()
	return startRotationExporterIn(t, t.TempDir(), env, args...)
}

// startRotationExporterIn keeps the token and the backup directory in dir, so that a second
// exporter started in the same dir is the first one restarted.
func startRotationExporterIn(t *testing.T, dir string, env []string, args ...string) *rotationExporter {
	t.Helper()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	backups := filepath.Join(dir, "backups")
	args = append([]string{"--rotation.token-file", tokenFile, "--rotation.backup-dir", backups}, args...)
	if !strings.Contains(strings.Join(args, " "), "--rotation.settle-time") {
		args = append(args, "--rotation.settle-time", "3s")
	}
	return &rotationExporter{startExporter(t, env, args...), backups}
}

// answer is what the rotation API answered, its body read and closed.
type answer struct {
	StatusCode int
	Status     string
	Header     http.Header
}

// api calls the rotation API and decodes the JSON answer into out (when not nil).
func (e *rotationExporter) api(t testing.TB, method, path, auth, body string, out any) answer {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(data, out)
	}
	return answer{resp.StatusCode, resp.Status, resp.Header}
}

// rotate POSTs a rotation and waits for its end.
func (e *rotationExporter) rotate(t *testing.T, container, body string) rotation.Report {
	t.Helper()
	var rep rotation.Report
	resp := e.api(t, "POST", "/api/v1/containers/"+container+"/rotate", token, body, &rep)
	if resp.StatusCode != http.StatusAccepted || rep.State != rotation.Running || resp.Header.Get("Location") != "/api/v1/rotations/"+rep.ID {
		t.Fatalf("POST rotate: %s, %+v, Location %q", resp.Status, rep, resp.Header.Get("Location"))
	}
	return e.wait(t, rep.ID)
}

func (e *rotationExporter) wait(t *testing.T, id string) rotation.Report {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var rep rotation.Report
		if resp := e.api(t, "GET", "/api/v1/rotations/"+id, token, "", &rep); resp.StatusCode != 200 {
			t.Fatalf("GET rotation: %s", resp.Status)
		}
		if rep.State != rotation.Running {
			return rep
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("rotation %s still running after 2 minutes", id)
	return rotation.Report{}
}

func inspect(t *testing.T, id string) (state string, restarts int) {
	t.Helper()
	in, err := engine.Client.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(in.Container.State.Status), in.Container.RestartCount
}

// backupFile extracts one file of a backup archive by its path in the container.
func backupFile(t *testing.T, archive, path string) []byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", path, archive, err)
		}
		if hdr.Name == strings.TrimPrefix(path, "/") {
			data, _ := io.ReadAll(tr)
			return data
		}
	}
}

func TestRotateCrashLoopingContainerByOnePOST(t *testing.T) {
	// Not in parallel: it checks that the restart policy's start, not the job's, follows the
	// failed first start, a race that the load of the other tests can tip.
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	waitRestarts(t, sim, 2)
	before := copyTree(t, sim.Name)
	keys := fileHashes(t, before, ".key")
	_, oldNotAfter := opensslDates(t, filepath.Join(before, "server/tls/client-admin.crt"))

	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	// The exporter keeps serving metrics while the rotation runs.
	stopScraping := make(chan struct{})
	var scrapes sync.WaitGroup
	scrapes.Add(1)
	scrapeErrors := 0
	go func() {
		defer scrapes.Done()
		for {
			select {
			case <-stopScraping:
				return
			case <-time.After(100 * time.Millisecond):
				if resp, err := http.Get(e.url + "/metrics"); err != nil || resp.StatusCode != 200 {
					scrapeErrors++
				} else {
					resp.Body.Close()
				}
			}
		}
	}()
	started := time.Now()
	rep := e.rotate(t, sim.Name, "")
	rotationTime := time.Since(started)
	close(stopScraping)
	scrapes.Wait()

	// 2.3 keeps its 6443 certificate in the cluster and mints it again only for a new server
	// CA: the default is all-certs, and the second start follows.
	if rep.State != rotation.Succeeded || rep.Strategy != rotation.AllCerts || rep.RequestedStrategy != rotation.Auto ||
		!strings.Contains(rep.Reason, "Rancher v2.3.1 (k3s v0.8.0) never renews") || !strings.Contains(rep.Reason, "ListenerConfig") ||
		rep.Error != "" || rep.ContainerState != "running" {
		t.Fatalf("rotation %+v", rep)
	}
	if scrapeErrors > 0 {
		t.Errorf("%d scrapes failed during the rotation", scrapeErrors)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, string(s.Name)+":"+string(s.Outcome))
		if s.Start.IsZero() || s.End.Before(s.Start) {
			t.Errorf("step %s times %s..%s", s.Name, s.Start, s.End)
		}
	}
	if got := strings.Join(names, " "); got != "preflight:ok backup:ok stop:ok remove:ok start:ok verify:ok second-start:ok verify:ok" {
		t.Errorf("steps %s", got)
	}
	if second := rep.Steps[6]; !strings.Contains(second.Detail, "by its restart policy") {
		t.Errorf("second start %q: the restart policy of the container makes it", second.Detail)
	}
	if final := rep.Steps[7]; !strings.Contains(final.Detail, "6443 serves a verified certificate valid until") {
		t.Errorf("final verify %q does not check 6443", final.Detail)
	}
	adminPath := "/var/lib/rancher/k3s/server/tls/client-admin.crt"
	if rep.NotAfterBefore[adminPath] != oldNotAfter.UTC().Format(time.RFC3339) || rep.NotAfterAfter[adminPath] <= rep.NotAfterBefore[adminPath] {
		t.Errorf("report NotAfter of %s: before %s after %s (openssl before %s)", adminPath, rep.NotAfterBefore[adminPath], rep.NotAfterAfter[adminPath], oldNotAfter)
	}

	time.Sleep(2 * time.Second)
	if state, restarts := inspect(t, sim.ID); state != "running" {
		t.Fatalf("after rotation the container is %s (restarts %d)", state, restarts)
	}
	after := copyTree(t, sim.Name)
	r := releaseOf(t, sim.Profile)
	for _, leaf := range r.leaves() {
		_, na := opensslDates(t, filepath.Join(after, leaf+".crt"))
		if d := na.Sub(time.Now().Add(365 * day)); d < -5*time.Minute || d > 5*time.Minute {
			t.Errorf("%s expires %s after rotation, want a year from now", leaf, na)
		}
		verifyLeaf(t, after, leaf, r)
	}
	sameFiles(t, "keys", keys, fileHashes(t, after, ".key"), r.keys())
	served := servedAPICert(t, sim)
	if d := served.NotAfter.Sub(time.Now().Add(365 * day)); d < -5*time.Minute || d > 5*time.Minute {
		t.Errorf("6443 serves a certificate expiring %s after the rotation, want a year from now", served.NotAfter)
	}
	openssl(t, "verify", "-CAfile", filepath.Join(after, "server/tls/server-ca.crt"), pemFile(t, served))

	// The backup holds the old certificate: same expiry as before the rotation.
	if info, err := os.Stat(rep.Backup); err != nil || info.Mode().Perm() != 0o600 || !strings.HasPrefix(rep.Backup, e.backups) {
		t.Fatalf("backup %s: %v %v", rep.Backup, info, err)
	}
	if info, _ := os.Stat(e.backups); info.Mode().Perm() != 0o700 {
		t.Errorf("backup directory mode %v", info.Mode().Perm())
	}
	old := filepath.Join(t.TempDir(), "old.crt")
	os.WriteFile(old, backupFile(t, rep.Backup, adminPath), 0o644)
	if _, na := opensslDates(t, old); !na.Equal(oldNotAfter) {
		t.Fatalf("backup's client-admin.crt expires %s, before the rotation it was %s", na, oldNotAfter)
	}

	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_rotations_total", map[string]string{"container": sim.Name, "kind": "rotate", "result": "succeeded"}); v != 1 {
		t.Errorf("rotations_total = %v", v)
	}
	if v := value(t, mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "listener"}); int64(v) != served.NotAfter.Unix() {
		t.Errorf("the exporter reports the 6443 certificate expiring %v, 6443 serves %s", v, served.NotAfter)
	}
	if v := value(t, mfs, "rancher_cert_exporter_rotation_in_progress", map[string]string{"container": sim.Name}); v != 0 {
		t.Errorf("in progress = %v", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_rotation_last_timestamp_seconds", map[string]string{"container": sim.Name, "kind": "rotate", "result": "succeeded"}); v < float64(started.Unix()) {
		t.Errorf("last rotation time %v", v)
	}

	restartStart := time.Now()
	docker(t, "restart", "-t", "10", sim.Name)
	waitCount(t, sim, simReady, 2)
	t.Logf("rotation took %s (settle time 3s); a plain restart to ready takes %s", rotationTime.Round(time.Millisecond), time.Since(restartStart).Round(time.Millisecond))
}

// TestRotateAllCertsHandlesTheSecondRestart: from k3s v1.17 the 6443 certificate is the cache
// dynamic-cert.json; signed by the CA all-certs replaced, the first start hangs on it, running,
// and the job makes the second start itself.
func TestRotateAllCertsHandlesTheSecondRestart(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 20, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	before := copyTree(t, sim.Name)
	keys := fileHashes(t, before, ".key")
	oldCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(before, "server/tls/server-ca.crt"))

	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	rep := e.rotate(t, sim.Name, `{"strategy": "all-certs"}`)
	if rep.State != rotation.Succeeded {
		t.Fatalf("all-certs: %+v", rep)
	}
	var names []string
	for _, s := range rep.Steps {
		names = append(names, string(s.Name))
	}
	if got := strings.Join(names, " "); got != "preflight backup stop remove start verify second-start verify" {
		t.Fatalf("steps %s: want the second start", got)
	}
	if first := rep.Steps[5]; !strings.Contains(first.Detail, "unknown authority") || !strings.Contains(first.Detail, "a second start follows") {
		t.Fatalf("first verify %+v: want the second start", first)
	}
	if second := rep.Steps[6]; second.Detail != "stopped and started once more" {
		t.Fatalf("second start %+v: the container hung running, so the job makes it", second)
	}
	if logs := engine.Logs(t, sim.ID); !strings.Contains(logs, "x509: certificate signed by unknown authority") {
		t.Fatal("the simulator never showed the unknown-authority start")
	}
	after := copyTree(t, sim.Name)
	if newCA := openssl(t, "x509", "-noout", "-subject", "-in", filepath.Join(after, "server/tls/server-ca.crt")); newCA == oldCA {
		t.Fatal("all-certs kept the old server CA")
	}
	openssl(t, "verify", "-CAfile", filepath.Join(after, "server/tls/server-ca.crt"), dynamicCert(t, filepath.Join(after, "server/tls/dynamic-cert.json")))
	sameFiles(t, "keys", keys, fileHashes(t, after, ".key"), releaseOf(t, sim.Profile).keys())
}

func TestRotateRestartStrategy(t *testing.T) {
	t.Parallel()
	renewing := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 30})
	never := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, LeafDays: 30})
	engine.WaitLog(t, renewing.ID, simReady, 30*time.Second)
	engine.WaitLog(t, never.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", renewing.Name, "--rancher.container", never.Name)

	rep := e.rotate(t, renewing.Name, `{"strategy": "restart"}`)
	if rep.State != rotation.Succeeded || rep.Steps[3].Name != "remove" || rep.Steps[3].Outcome != rotation.StepSkipped {
		t.Fatalf("restart on on-start k3s: %+v", rep)
	}
	_, na := opensslDates(t, filepath.Join(copyTree(t, renewing.Name), "server/tls/client-admin.crt"))
	if na.Before(time.Now().Add(364 * day)) {
		t.Fatalf("leaves not renewed by the restart: %s", na)
	}

	rep = e.rotate(t, never.Name, `{"strategy": "restart"}`)
	if rep.State != rotation.Failed || !strings.Contains(rep.Error, "rotate with a strategy that removes it") {
		t.Fatalf("restart on k3s v0.8: %+v", rep)
	}
	if state, _ := inspect(t, never.ID); state != "running" {
		t.Fatalf("container %s after the failed restart strategy", state)
	}
}

func TestRestoreBringsBackTheOldBytes(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 10, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	before := fileHashes(t, copyTree(t, sim.Name), ".crt")
	backups := t.TempDir()
	cli := func(args ...string) (string, int) {
		t.Helper()
		return runCLI(t, append(args, "--rancher.container", sim.Name, "--rotation.backup-dir", backups, "--rotation.settle-time", "2s")...)
	}
	out, code := cli("rotate")
	var rep rotation.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.State != rotation.Succeeded {
		t.Fatalf("rotate CLI: exit %d, %v\n%s", code, err, out)
	}
	if fileHashes(t, copyTree(t, sim.Name), ".crt")["server/tls/client-admin.crt"] == before["server/tls/client-admin.crt"] {
		t.Fatal("rotation did not change client-admin.crt")
	}
	out, code = cli("restore", "--backup", rep.Backup)
	if code != 0 || !strings.Contains(out, `"state": "succeeded"`) {
		t.Fatalf("restore CLI: exit %d\n%s", code, out)
	}
	sameFiles(t, "certificates restored from the backup", before, fileHashes(t, copyTree(t, sim.Name), ".crt"), releaseOf(t, sim.Profile).certFiles()-1)
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Fatalf("restored container is %s", state)
	}
}

// runCLI runs the exporter binary and returns its standard output and exit code; the steps
// it prints on standard error must show each step starting and ending.
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, stderr, code := runBinary(t, args...)
	if !strings.Contains(stderr, "preflight  ...") || !strings.Contains(stderr, "verify     ok") {
		t.Errorf("the CLI did not show its steps:\n%s", stderr)
	}
	return out, code
}

// runRotateCLI runs a job of the CLI that may fail, and returns its standard output and exit
// code.
func runRotateCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, _, code := runBinary(t, args...)
	return out, code
}

func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(exporterBinary(t), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("%s:\n%s", strings.Join(args, " "), errOut.String())
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// decodeReport reads the JSON report a job of the CLI prints.
func decodeReport(t *testing.T, out string) rotation.Report {
	t.Helper()
	var rep rotation.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report %q: %v", out, err)
	}
	return rep
}
