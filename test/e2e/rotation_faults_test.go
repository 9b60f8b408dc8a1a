package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

func TestRotationAPIStatusCodes(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 50})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	disabled := startExporter(t, nil, "--rancher.container", sim.Name)
	resp, err := http.Post(disabled.url+"/api/v1/containers/"+sim.Name+"/rotate", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("rotation without a token file: %s, want 404", resp.Status)
	}

	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	rotate := "/api/v1/containers/" + sim.Name + "/rotate"
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"POST", rotate, "", "", http.StatusUnauthorized},
		{"POST", rotate, "wrong", "", http.StatusUnauthorized},
		{"GET", rotate, token, "", http.StatusMethodNotAllowed},
		{"DELETE", rotate, token, "", http.StatusMethodNotAllowed},
		{"POST", "/api/v1/containers/rce-no-such-container/rotate", token, "", http.StatusNotFound},
		{"POST", rotate, token, `{"strategy": "everything"}`, http.StatusBadRequest},
		{"POST", rotate, token, `{`, http.StatusBadRequest},
		// null is what clients send for an unset option: refused, never a rotation.
		{"POST", rotate, token, `{"dry_run": null}`, http.StatusBadRequest},
		{"POST", rotate, token, `null`, http.StatusBadRequest},
		{"GET", "/api/v1/rotations/0123456789abcdef", token, "", http.StatusNotFound},
	} {
		resp := e.api(t, tc.method, tc.path, tc.auth, tc.body, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s (token %q, body %q): %s, want %d", tc.method, tc.path, tc.auth, tc.body, resp.Status, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	time.Sleep(2 * time.Second) // let the failed-authentication limiter refill

	// A dry run answers with the plan at once, changes nothing and leaves nothing: no backup,
	// journal or lock, no job to look up. 2.3's auto plan removes every certificate file.
	before := fileHashes(t, copyTree(t, sim.Name), "")
	var rep rotation.Report
	if resp := e.api(t, "POST", rotate, token, `{"dry_run": true}`, &rep); resp.StatusCode != http.StatusOK {
		t.Fatalf("dry run: %s", resp.Status)
	}
	if rep.State != rotation.Succeeded || rep.Strategy != rotation.AllCerts || len(rep.Plan) != releaseOf(t, sim.Profile).certFiles() || rep.Backup != "" || len(rep.Steps) != 1 {
		t.Fatalf("dry run: %+v", rep)
	}
	sameFiles(t, "files after a dry run", before, fileHashes(t, copyTree(t, sim.Name), ""), releaseOf(t, sim.Profile).certFiles()+releaseOf(t, sim.Profile).keys())
	if left, _ := filepath.Glob(filepath.Join(e.backups, "*")); len(left) != 0 {
		t.Fatalf("a dry run left %v", left)
	}
	if resp := e.api(t, "GET", "/api/v1/rotations/"+rep.ID, token, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET of a dry run: %s", resp.Status)
	}

	// Two rotations at once: one runs, the other gets 409.
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.url+rotate, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := http.DefaultClient.Do(req); err == nil { // 0 stays on error
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if (codes[0] != 202 || codes[1] != 409) && (codes[0] != 409 || codes[1] != 202) {
		t.Fatalf("concurrent rotations answered %v, want 202 and 409", codes)
	}
	// A dry run while the rotation runs is refused as a rotation is: not a plan of a container
	// half rotated.
	dry := e.api(t, "POST", rotate, token, `{"dry_run": true}`, nil)
	if dry.StatusCode != http.StatusConflict || !strings.HasPrefix(dry.Header.Get("Location"), "/api/v1/rotations/") {
		t.Errorf("a dry run during a rotation: %d, Location %q; want 409 with the running job", dry.StatusCode, dry.Header.Get("Location"))
	}
	var running rotation.Report
	if again := e.api(t, "POST", rotate, token, "", &running); again.StatusCode == http.StatusConflict {
		e.wait(t, strings.TrimPrefix(again.Header.Get("Location"), "/api/v1/rotations/"))
	}
}

func TestRotationTokenFileReadableByOthersWarns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(token), 0o644)
	e := startExporter(t, nil, "--no-rancher.discover", "--rancher.container", "any", "--rotation.token-file", tokenFile)
	if !strings.Contains(e.log.String(), "token file is readable by group or others") {
		t.Fatalf("no warning for a 0644 token file:\n%s", e.log)
	}
}

// assertFailedSafely checks the end of a failed job: a clear error, the backup kept and
// verified readable, the container running.
func assertFailedSafely(t *testing.T, rep rotation.Report, sim *harness.Sim, wantErr string) {
	t.Helper()
	if rep.State != rotation.Failed || !strings.Contains(rep.Error, wantErr) {
		t.Fatalf("job %+v, want failed with %q", rep, wantErr)
	}
	if _, err := os.Stat(rep.Backup); err != nil {
		t.Fatalf("backup not kept: %v", err)
	}
	backupFile(t, rep.Backup, "/var/lib/rancher/k3s/server/tls/server-ca.crt")
	if sim != nil {
		if state, _ := inspect(t, sim.ID); state != "running" {
			t.Fatalf("container left %s", state)
		}
	}
}

func TestRotationHelperFailureLeavesContainerRunning(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V23NoRm, LeafDays: 10, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	before := fileHashes(t, copyTree(t, sim.Name), ".crt")
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	rep := e.rotate(t, sim.Name, "")
	assertFailedSafely(t, rep, sim, "remove: start helper container")
	if last := rep.Steps[len(rep.Steps)-1]; last.Name != "recover" || last.Outcome != rotation.StepOK {
		t.Fatalf("last step %+v, want the container recovered", last)
	}
	sameFiles(t, "certificates after the helper failed", before, fileHashes(t, copyTree(t, sim.Name), ".crt"), releaseOf(t, harness.V23).certFiles()-1)
}

func TestRotationTimeout(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 10, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.timeout", "2s", "--rotation.settle-time", "10s")
	rep := e.rotate(t, sim.Name, "")
	assertFailedSafely(t, rep, sim, "context deadline exceeded")
}

func TestRotationContainerVanishes(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 10})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.settle-time", "6s")
	var rep rotation.Report
	e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, "", &rep)
	waitStep(t, e, rep.ID, "verify")
	docker(t, "rm", "-f", "-v", sim.Name)
	rep = e.wait(t, rep.ID)
	assertFailedSafely(t, rep, nil, "No such container")
	if v := value(t, e.scrape(t), "rancher_cert_exporter_rotations_total", map[string]string{"container": sim.Name, "kind": "rotate", "result": "failed"}); v != 1 {
		t.Errorf("failed rotations counted %v", v)
	}
}

func TestRotationSurvivesDockerRestart(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 10, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	proxy := newEngineProxy(t)
	e := startRotationExporter(t, proxy.env(), "--rancher.container", sim.Name, "--rotation.settle-time", "6s")
	var rep rotation.Report
	e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, "", &rep)
	waitStep(t, e, rep.ID, "verify")
	proxy.down() // the engine goes away mid-verify and comes back 3s later
	time.Sleep(3 * time.Second)
	proxy.up(t)
	rep = e.wait(t, rep.ID)
	assertFailedSafely(t, rep, sim, "verify:")
	if v := value(t, e.scrape(t), "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "k3s"}); v != 1 {
		t.Errorf("k3s source down after the engine came back")
	}
}

// waitStep waits until a job has started the named step.
func waitStep(t *testing.T, e *rotationExporter, id string, step rotation.StepName) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var rep rotation.Report
		e.api(t, "GET", "/api/v1/rotations/"+id, token, "", &rep)
		for _, s := range rep.Steps {
			if s.Name == step {
				return
			}
		}
		if rep.State != rotation.Running {
			t.Fatalf("job ended before %s: %+v", step, rep)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("job never reached %s", step)
}
