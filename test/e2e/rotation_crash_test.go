package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// journalOf reads a job's journal as the next process finds it.
func journalOf(t *testing.T, backups, id string) (state rotation.State, todo int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(backups, "journal", id+".json"))
	if err != nil {
		t.Fatalf("journal of %s: %v", id, err)
	}
	var j struct {
		State rotation.State    `json:"state"`
		Todo  []json.RawMessage `json:"todo"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	return j.State, len(j.Todo)
}

// helpersOf lists the helper containers left for a container, in any state.
func helpersOf(t *testing.T, cli *client.Client, containerID string) []string {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", rancher.LabelContainer+"="+containerID)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range res.Items {
		out = append(out, c.ID[:12]+" "+string(c.State))
	}
	return out
}

// assertFinishedByRecovery checks a job that a killed process left and the next one finished:
// succeeded with the story in its steps, the container running with renewed leaves and the
// same keys, no helper left, the journal closed, a verified backup and no temporary file.
func assertFinishedByRecovery(t *testing.T, sim *harness.Sim, backups string, rep rotation.Report, keys map[string]string) {
	t.Helper()
	if rep.State != rotation.Succeeded {
		t.Fatalf("recovered job %s: %s\n%+v", rep.State, rep.Error, rep.Steps)
	}
	recovered := false
	for _, s := range rep.Steps {
		recovered = recovered || s.Name == "recover" && strings.Contains(s.Detail, "recovered after interruption")
	}
	if !recovered {
		t.Errorf("no recovery step in %+v", rep.Steps)
	}
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Errorf("container %s", state)
	}
	after := copyTree(t, sim.Name)
	if _, na := opensslDates(t, filepath.Join(after, "server/tls/client-admin.crt")); na.Before(time.Now().Add(364 * day)) {
		t.Errorf("client-admin.crt expires %s: not renewed", na)
	}
	sameFiles(t, "keys", keys, fileHashes(t, after, ".key"), releaseOf(t, sim.Profile).keys())
	if left := helpersOf(t, engine.Client, sim.ID); len(left) > 0 {
		t.Errorf("helper containers left: %v", left)
	}
	if state, todo := journalOf(t, backups, rep.ID); state != rotation.Succeeded || todo != 0 {
		t.Errorf("journal %s with %d steps to do", state, todo)
	}
	backupFile(t, rep.Backup, "/var/lib/rancher/k3s/server/tls/client-admin.key")
	if tmp, _ := filepath.Glob(filepath.Join(backups, ".*.tmp")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// waitWithin waits for a job to end, failing after timeout.
func (e *rotationExporter) waitWithin(t *testing.T, id string, timeout time.Duration) rotation.Report {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var rep rotation.Report
		if resp := e.api(t, "GET", "/api/v1/rotations/"+id, token, "", &rep); resp.StatusCode == 200 && rep.State != rotation.Running {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not finished within %s", id, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRotationKilledAtEachStepIsFinishedByTheNextStart kills the exporter (kill -9) at each step
// boundary of a rotation of a crash-looping expired server and starts it again with the same
// flags: within 60 s the job is finished from its journal.
func TestRotationKilledAtEachStepIsFinishedByTheNextStart(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"backup", "stop", "remove", "start", "verify"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
			waitRestarts(t, sim, 1)
			keys := fileHashes(t, copyTree(t, sim.Name), ".key")
			dir := t.TempDir()
			first := startRotationExporterIn(t, dir, []string{rotation.StallEnv + "=" + point}, "--rancher.container", sim.Name)
			var rep rotation.Report
			first.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, "", &rep)
			first.log.waitFor(t, "stalled at "+point, time.Minute)
			assertInterruptedAt(t, point, sim, first.backups, rep.ID)
			first.cmd.Process.Kill()
			first.cmd.Wait()

			killed := time.Now()
			second := startRotationExporterIn(t, dir, nil, "--rancher.container", sim.Name)
			rep = second.waitWithin(t, rep.ID, 60*time.Second)
			t.Logf("killed at %s: finished %s in %s after the restart", point, rep.State, time.Since(killed).Round(time.Millisecond))
			assertFinishedByRecovery(t, sim, first.backups, rep, keys)
			if !strings.Contains(second.log.String(), "finishing a job that a dead process left unfinished") {
				t.Errorf("the restarted exporter did not log the recovery:\n%s", second.log)
			}
		})
	}
}

// assertInterruptedAt checks that the kill lands where the test means it to.
func assertInterruptedAt(t *testing.T, point string, sim *harness.Sim, backups, id string) {
	t.Helper()
	state, _ := inspect(t, sim.ID)
	switch point {
	case "backup":
		final, _ := filepath.Glob(filepath.Join(backups, "*.tar.gz"))
		tmp, _ := filepath.Glob(filepath.Join(backups, "."+id+".tar.gz.tmp"))
		if len(final) != 0 || len(tmp) != 1 {
			t.Fatalf("during the backup: final %v, temporary %v", final, tmp)
		}
	case "stop":
		if state != "exited" {
			t.Fatalf("after the stop the container is %s", state)
		}
	case "remove":
		if left := helpersOf(t, engine.Client, sim.ID); len(left) != 1 || !strings.HasSuffix(left[0], "created") {
			t.Fatalf("during the removal: helpers %v, want one created", left)
		}
	case "start", "verify":
		// 2.3's first start after a new CA fails on the old kubeconfig, and its restart
		// policy starts it again.
		if state != "running" && (!releaseOf(t, sim.Profile).listenerConfig || state != "restarting") {
			t.Fatalf("after the start the container is %s", state)
		}
	}
}

// TestRotateCLIKilledAndRunAgain: a rotate killed while its helper container exists, then run
// again with the same flags, first finishes the dead one's job, then runs its own.
func TestRotateCLIKilledAndRunAgain(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	waitRestarts(t, sim, 1)
	keys := fileHashes(t, copyTree(t, sim.Name), ".key")
	backups := t.TempDir()
	args := []string{"rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", backups, "--rotation.settle-time", "3s"}

	first := exec.Command(exporterBinary(t), args...)
	first.Env = append(os.Environ(), rotation.StallEnv+"=remove")
	var firstErr syncBuffer
	first.Stderr = &firstErr
	first.SysProcAttr = dieWithTest
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstErr.waitFor(t, "stalled at remove", time.Minute)
	first.Process.Kill()
	first.Wait()
	journals, _ := filepath.Glob(filepath.Join(backups, "journal", "*.json"))
	if len(journals) != 1 {
		t.Fatalf("journals %v", journals)
	}
	id := strings.TrimSuffix(filepath.Base(journals[0]), ".json")

	killed := time.Now()
	out, stderr, code := runBinary(t, args...)
	t.Logf("the second rotate ended %s after the kill", time.Since(killed).Round(time.Millisecond))
	if code != 0 || decodeReport(t, out).State != rotation.Succeeded {
		t.Fatalf("second rotate: exit %d\n%s", code, out)
	}
	if !strings.Contains(stderr, "finishing rotate job "+id) || !strings.Contains(stderr, "recovered job "+id+": succeeded") {
		t.Fatalf("the second rotate did not finish job %s first:\n%s", id, stderr)
	}
	if state, todo := journalOf(t, backups, id); state != rotation.Succeeded || todo != 0 {
		t.Errorf("journal of the killed job: %s, %d to do", state, todo)
	}
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Errorf("container %s", state)
	}
	sameFiles(t, "keys", keys, fileHashes(t, copyTree(t, sim.Name), ".key"), releaseOf(t, sim.Profile).keys())
	if left := helpersOf(t, engine.Client, sim.ID); len(left) > 0 {
		t.Errorf("helper containers left: %v", left)
	}
}

// TestOneRotationPerContainerAcrossProcesses: the CLI and exporters sharing a backup directory
// never rotate one container at once; the loser is told who holds it.
func TestOneRotationPerContainerAcrossProcesses(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 10})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	dir := t.TempDir()
	api := startRotationExporterIn(t, dir, nil, "--rancher.container", sim.Name)
	rotate := "/api/v1/containers/" + sim.Name + "/rotate"

	// The CLI holds the container (stalled in verify): the API answers 409 naming it.
	cli := exec.Command(exporterBinary(t), "rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", api.backups, "--rotation.settle-time", "1s")
	cli.Env = append(os.Environ(), rotation.StallEnv+"=verify")
	var cliErr syncBuffer
	cli.Stderr, cli.SysProcAttr = &cliErr, dieWithTest
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	cliErr.waitFor(t, "stalled at verify", time.Minute)
	var refused map[string]string
	resp := api.api(t, "POST", rotate, token, "", &refused)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(refused["error"], fmt.Sprintf("rotate (pid %d", cli.Process.Pid)) {
		t.Fatalf("POST while the CLI rotates: %s %v", resp.Status, refused)
	}
	var cliJob rotation.Report
	if api.api(t, "GET", resp.Header.Get("Location"), token, "", &cliJob); cliJob.State != rotation.Running || cliJob.Kind != rotation.KindRotate {
		t.Fatalf("the CLI's job as the API reports it: %+v", cliJob)
	}

	// The CLI dies; the next POST finishes its job first and is told so.
	cli.Process.Kill()
	cli.Wait()
	resp = api.api(t, "POST", rotate, token, "", nil)
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Location") != "/api/v1/rotations/"+cliJob.ID {
		t.Fatalf("POST after the CLI died: %s, Location %q, want 409 at the CLI's job %s", resp.Status, resp.Header.Get("Location"), cliJob.ID)
	}
	if rep := api.waitWithin(t, cliJob.ID, time.Minute); rep.State != rotation.Succeeded {
		t.Fatalf("the CLI's job finished by the exporter: %+v", rep)
	}

	// Another exporter on the same directory holds it (stalled in verify): the CLI and the
	// first exporter are refused, naming it.
	other := startRotationExporterIn(t, dir, []string{rotation.StallEnv + "=verify"}, "--rancher.container", sim.Name)
	var otherJob rotation.Report
	other.api(t, "POST", rotate, token, "", &otherJob)
	other.log.waitFor(t, "stalled at verify", time.Minute)
	_, stderr, code := runBinary(t, "rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", api.backups)
	if code == 0 || !strings.Contains(stderr, "already running: job "+otherJob.ID) || !strings.Contains(stderr, fmt.Sprintf("serve (pid %d", other.cmd.Process.Pid)) {
		t.Fatalf("CLI while an exporter rotates: exit %d\n%s", code, stderr)
	}
	if resp := api.api(t, "POST", rotate, token, "", nil); resp.StatusCode != http.StatusConflict || resp.Header.Get("Location") != "/api/v1/rotations/"+otherJob.ID {
		t.Fatalf("POST to the first exporter while the other rotates: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	var list []rotation.Report
	api.api(t, "GET", "/api/v1/rotations", token, "", &list)
	if len(list) != 2 || list[0].ID != otherJob.ID || list[1].ID != cliJob.ID {
		t.Fatalf("GET /api/v1/rotations: want the other exporter's job, then the CLI's: %+v", list)
	}
}

// TestRotationRefusedWhenTheBackupDiskIsFull: a backup directory on a tmpfs with less room than
// twice the tree: refused in preflight, nothing changed.
func TestRotationRefusedWhenTheBackupDiskIsFull(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	waitRestarts(t, sim, 1)
	tree := copyTree(t, sim.Name)
	var treeBytes int64
	filepath.Walk(filepath.Join(tree, "server/tls"), func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			treeBytes += info.Size()
		}
		return nil
	})
	if treeBytes < 12<<10 {
		t.Fatalf("the tree has %d bytes: too small for this test's tmpfs", treeBytes)
	}
	backups := filepath.Join(t.TempDir(), "backups")
	os.Mkdir(backups, 0o700)
	size := (treeBytes+4095)/4096*4 + 8 // KiB: the tree and two pages, less than twice the tree
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dk,mode=0700", size), "tmpfs", backups).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs (the tests run as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", backups).Run() })
	before := fileHashes(t, tree, "")
	stateBefore, _ := inspect(t, sim.ID)

	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)
	e := &rotationExporter{startExporter(t, nil, "--rancher.container", sim.Name, "--rotation.token-file", tokenFile, "--rotation.backup-dir", backups), backups}
	rep := e.rotate(t, sim.Name, "")
	if rep.State != rotation.Failed || !strings.Contains(rep.Error, "less than twice") || len(rep.Steps) != 1 || rep.Backup != "" {
		t.Fatalf("rotation onto a full disk: %+v", rep)
	}
	t.Logf("refused: %s", rep.Error)
	if archives, _ := filepath.Glob(filepath.Join(backups, "*.tar.gz")); len(archives) > 0 {
		t.Errorf("archives written: %v", archives)
	}
	sameFiles(t, "files after the refusal", before, fileHashes(t, copyTree(t, sim.Name), ""), releaseOf(t, sim.Profile).certFiles())
	if state, _ := inspect(t, sim.ID); state != "running" && state != "restarting" {
		t.Errorf("container %s, was crash-looping (%s)", state, stateBefore)
	}
}

// TestBackupRetention: the 11th backup prunes the oldest; a failed job's backup is kept.
func TestBackupRetention(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 200})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	dir := t.TempDir()
	e := startRotationExporterIn(t, dir, nil, "--rancher.container", sim.Name, "--rotation.settle-time", "1s")
	restart := `{"strategy": "restart"}`
	backupsNow := func() []string {
		files, _ := filepath.Glob(filepath.Join(e.backups, sim.Name+"-*.tar.gz"))
		return files
	}
	oldest := e.rotate(t, sim.Name, restart)
	// A job that fails after its backup, from the CLI on the same directory.
	out, _, code := runBinary(t, "rotate", "--strategy", "restart", "--rancher.container", sim.Name, "--rotation.backup-dir", e.backups,
		"--rotation.settle-time", "20s", "--rotation.timeout", "4s")
	failed := decodeReport(t, out)
	if code == 0 || failed.State != rotation.Failed || failed.Backup == "" {
		t.Fatalf("the failing rotation: exit %d %+v", code, failed)
	}
	for i := 2; i <= 10; i++ {
		if rep := e.rotate(t, sim.Name, restart); rep.State != rotation.Succeeded {
			t.Fatalf("rotation %d: %+v", i, rep)
		}
	}
	files := backupsNow()
	if len(files) != 10 || slices.Contains(files, oldest.Backup) || !slices.Contains(files, failed.Backup) {
		t.Fatalf("after the 11th backup: %v; want 10, without the oldest %s, with the failed job's %s", files, oldest.Backup, failed.Backup)
	}

	e.cmd.Process.Kill()
	e.cmd.Wait()
	e = startRotationExporterIn(t, dir, nil, "--rancher.container", sim.Name, "--rotation.settle-time", "1s", "--rotation.backup-keep", "2")
	last := e.rotate(t, sim.Name, restart)
	files = backupsNow()
	if len(files) != 3 || !slices.Contains(files, last.Backup) || !slices.Contains(files, failed.Backup) {
		t.Fatalf("with --rotation.backup-keep 2: %v; want the 2 newest and the failed job's %s", files, failed.Backup)
	}
}

// TestSIGTERMFinishesOrRollsBackTheRotation: on SIGTERM the exporter lets a rotation finish when
// it can within --rotation.stop-grace, else rolls it back, and exits within the grace.
func TestSIGTERMFinishesOrRollsBackTheRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, settle string
		wantState    rotation.State
		wantErr      string
	}{
		{"finishes", "3s", rotation.Succeeded, ""},
		{"rolls back", "60s", rotation.Failed, "the exporter is stopping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
			waitRestarts(t, sim, 1)
			e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.settle-time", tc.settle, "--rotation.stop-grace", "20s")
			var rep rotation.Report
			e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, "", &rep)
			waitStep(t, e, rep.ID, "remove")
			signalled := time.Now()
			e.cmd.Process.Signal(syscall.SIGTERM)
			exited := make(chan error, 1)
			go func() { exited <- e.cmd.Wait() }()
			select {
			case <-exited:
			case <-time.After(25 * time.Second):
				t.Fatal("the exporter did not exit within the stop grace")
			}
			t.Logf("exited %s after SIGTERM", time.Since(signalled).Round(time.Millisecond))
			state, todo := journalOf(t, e.backups, rep.ID)
			if state != tc.wantState || todo != 0 {
				t.Fatalf("journal %s with %d to do, want %s", state, todo, tc.wantState)
			}
			if tc.wantErr != "" && !strings.Contains(e.log.String(), tc.wantErr) {
				t.Errorf("the log does not say %q:\n%s", tc.wantErr, e.log)
			}
			if state, _ := inspect(t, sim.ID); state != "running" {
				t.Errorf("container %s", state)
			}
			if left := helpersOf(t, engine.Client, sim.ID); len(left) > 0 {
				t.Errorf("helper containers left: %v", left)
			}
		})
	}
}

// TestRotationSurvivesItsEngineRestarting restarts the Docker engine itself in the middle of a
// rotation (a second, private dockerd: the other tests keep theirs): the job ends cleanly,
// failed or succeeded, and nothing is lost.
func TestRotationSurvivesItsEngineRestarting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	second := secondEngine(t, "rce-d2")
	image := harness.V23.Image
	load := exec.Command("sh", "-c", fmt.Sprintf("docker save %s | docker -H %s load", image, second.Host))
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("load %s into the second engine: %v\n%s", image, err, out)
	}
	name := harness.RandomName("rce-sim")
	d2 := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", append([]string{"-H", second.Host}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	id := d2("run", "-d", "--name", name, "--network", "none", "--restart", "unless-stopped", "-e", "SIM_LEAF_DAYS=-2", image)
	for deadline := time.Now().Add(time.Minute); d2("inspect", "-f", "{{.RestartCount}}", id) == "0"; {
		if time.Now().After(deadline) {
			t.Fatal("the simulator did not crash-loop")
		}
		time.Sleep(300 * time.Millisecond)
	}
	keys := fileHashes(t, copyTreeFrom(t, second.Client, name), ".key")

	e := startRotationExporter(t, []string{"DOCKER_HOST=" + second.Host}, "--rancher.container", name)
	var rep rotation.Report
	e.api(t, "POST", "/api/v1/containers/"+name+"/rotate", token, "", &rep)
	waitStep(t, e, rep.ID, "remove")
	restarted := time.Now()
	if err := second.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("engine restarted in %s", time.Since(restarted).Round(time.Millisecond))
	rep = e.waitWithin(t, rep.ID, 2*time.Minute)
	var steps []string
	for _, s := range rep.Steps {
		steps = append(steps, string(s.Name)+":"+string(s.Outcome))
	}
	t.Logf("job %s (%s): %s", rep.State, rep.Error, strings.Join(steps, " "))
	if rep.State != rotation.Succeeded && rep.State != rotation.Failed {
		t.Fatalf("job %s", rep.State)
	}
	if state := d2("inspect", "-f", "{{.State.Status}}", id); state != "running" && state != "restarting" {
		t.Errorf("container %s after the job", state)
	}
	if state, todo := journalOf(t, e.backups, rep.ID); state != rep.State || todo != 0 {
		t.Errorf("journal %s with %d to do", state, todo)
	}
	backupFile(t, rep.Backup, "/var/lib/rancher/k3s/server/tls/client-admin.crt")
	sameFiles(t, "keys", keys, fileHashes(t, copyTreeFrom(t, second.Client, name), ".key"), releaseOf(t, harness.V23).keys())
	if left := helpersOf(t, second.Client, id); len(left) > 0 {
		t.Errorf("helper containers left: %v", left)
	}
}
