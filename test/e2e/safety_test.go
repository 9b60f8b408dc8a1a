package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// strangerHelper creates a helper container as another exporter's rotation would (another
// backup directory's job), never started.
func strangerHelper(t *testing.T, sim *harness.Sim) string {
	t.Helper()
	res, err := engine.Client.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config: &container.Config{Image: sim.Profile.Image, Entrypoint: []string{"/bin/rm"}, Cmd: []string{"-f", "--", "/nothing"},
			Labels: map[string]string{harness.ImageLabel: "true", rancher.RoleLabel: rancher.RoleHelper, rancher.LabelJob: "0123456789abcdef", rancher.LabelContainer: sim.ID}},
		HostConfig: &container.HostConfig{VolumesFrom: []string{sim.ID}, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Remove(res.ID) })
	return res.ID
}

// TestReadOnlyExportersNeverWrite: an exporter without a token file and without --rotation.auto=on
// — metrics only, or plan mode — makes no write call to the engine over a whole run (start,
// scrapes, status page, stop), as a recording proxy on the engine's socket sees it; another
// exporter's helper container is left alone.
func TestReadOnlyExportersNeverWrite(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 3, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	helper := strangerHelper(t, sim)
	backups := filepath.Join(t.TempDir(), "backups")
	for _, mode := range [][]string{{"--rotation.backup-dir", backups}, {"--rotation.auto=plan", "--rotation.auto-before=14d", "--rotation.backup-dir", backups}} {
		proxy := newEngineProxy(t)
		e := startExporter(t, proxy.env(), append([]string{"--rancher.container", sim.Name}, mode...)...)
		for i := 0; i < 3; i++ {
			e.scrape(t)
			if resp, err := http.Get(e.url + "/"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(200 * time.Millisecond)
		}
		e.cmd.Process.Signal(syscall.SIGTERM)
		e.cmd.Wait()
		calls := proxy.requests()
		for _, c := range calls {
			if !strings.HasPrefix(c, "GET ") && !strings.HasPrefix(c, "HEAD ") {
				t.Fatalf("exporter %v made a write call %q; all calls: %v", mode, c, calls)
			}
		}
		if len(calls) < 5 {
			t.Fatalf("exporter %v made %d calls: the proxy saw nothing", mode, len(calls))
		}
		t.Logf("exporter %v: %d engine calls, all reads", mode, len(calls))
	}
	if _, err := engine.Client.ContainerInspect(context.Background(), helper, client.ContainerInspectOptions{}); err != nil {
		t.Fatalf("another exporter's helper container is gone: %v", err)
	}
	if _, err := os.Stat(backups); err == nil {
		t.Fatal("a read-only exporter made its backup directory")
	}
}

// TestRotationAPIActsOnWatchedContainersOnly: the API of an exporter that watches A refuses B
// (404), refuses a name that is no container name, and a mistyped body rotates nothing.
func TestRotationAPIActsOnWatchedContainersOnly(t *testing.T) {
	t.Parallel()
	a := engine.StartSim(t, harness.SimOptions{LeafDays: 200})
	b := engine.StartSim(t, harness.SimOptions{LeafDays: 200})
	engine.WaitLog(t, a.ID, simReady, 30*time.Second)
	engine.WaitLog(t, b.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", a.Name)
	_, restartsBefore := inspect(t, a.ID)
	for _, name := range []string{b.Name, b.ID, "..%2Fcontainers%2F" + a.Name, "%2E%2E"} {
		if got := e.api(t, "POST", "/api/v1/containers/"+name+"/rotate", token, `{"dry_run": true}`, nil); got.StatusCode != http.StatusNotFound {
			t.Fatalf("POST rotate of %q: %d, want 404: only what the exporter watches", name, got.StatusCode)
		}
	}
	if got := e.api(t, "POST", "/api/v1/containers/"+a.Name+"/rotate", token, `{"strategy": "leaf", "dryRun": true}`, nil); got.StatusCode != http.StatusBadRequest {
		t.Fatalf("a mistyped dry run: %d, want 400", got.StatusCode)
	}
	time.Sleep(time.Second)
	if state, restarts := inspect(t, a.ID); state != "running" || restarts != restartsBefore {
		t.Fatalf("after refused requests the container is %s with %d restarts", state, restarts)
	}
	if logs := engine.Logs(t, a.ID); strings.Count(logs, simReady) != 1 {
		t.Fatal("a refused request restarted the container")
	}
	if got := e.api(t, "POST", "/api/v1/containers/"+a.ID[:12]+"/rotate", token, `{"dry_run": true}`, nil); got.StatusCode != http.StatusOK {
		t.Fatalf("dry run of the watched container by short ID: %d", got.StatusCode)
	}
}

// fromAddr is an HTTP client whose connections come from a loopback address of its own: a
// client apart from the others, as far as the exporter can tell.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 5 * time.Second}
}

// TestHammeringClientCannotLockOutTheOperator: a client sending a wrong token ten times a second
// gets 429; the operator gets through with the right token every time, from another address
// and from the attacker's own (a local user, or everyone behind one reverse proxy).
func TestHammeringClientCannotLockOutTheOperator(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 200})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name)
	get := func(c *http.Client, auth string) int {
		req, _ := http.NewRequest("GET", e.url+"/api/v1/rotations", nil)
		req.Header.Set("Authorization", auth)
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	attacker, operator := fromAddr("127.0.0.2"), fromAddr("127.0.0.1")
	stop := make(chan struct{})
	var refused atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if get(attacker, "Bearer wrong") == http.StatusTooManyRequests {
					refused.Add(1)
				}
			}
		}
	}()
	time.Sleep(time.Second)
	through, sameAddr := 0, 0
	for i := 0; i < 22; i++ {
		if code := get(operator, "Bearer "+token); code == http.StatusOK {
			through++
		}
		if code := get(attacker, "Bearer "+token); code == http.StatusOK {
			sameAddr++
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if through != 22 || sameAddr != 22 || refused.Load() == 0 {
		t.Fatalf("%d of 22 operator requests went through, %d of 22 from the hammering address, while the attacker got %d 429s", through, sameAddr, refused.Load())
	}
	t.Logf("operator 22 of 22 through from its address and from the attacker's; attacker refused %d times", refused.Load())
}

// TestRotationNeedsItsBackupDirectoryAtStart: with rotation on, a backup directory that cannot
// be made is a start error, not the first rotation's.
func TestRotationNeedsItsBackupDirectoryAtStart(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)
	for _, args := range [][]string{
		{"--rotation.token-file", tokenFile, "--rotation.backup-dir", "/dev/null/backups"},
		{"--rotation.auto=on", "--rotation.backup-dir", "/dev/null/backups"},
	} {
		cmd := exec.Command(exporterBinary(t), append([]string{"--web.listen-address=127.0.0.1:0", "--rancher.container", "none"}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "backup directory /dev/null/backups") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, make([]byte, 1<<20), 0o600)
	out, err := exec.Command(exporterBinary(t), "--web.listen-address=127.0.0.1:0", "--rancher.container", "none", "--rotation.token-file", big,
		"--rotation.backup-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "more than 4096 bytes") {
		t.Fatalf("a 1 MiB token file: %v\n%s", err, out)
	}
}

// TestFullBackupDiskDuringVerify: the backup directory, a small tmpfs, fills up while the last
// verify runs. The rotation succeeded and says so; the exporter never takes its own job for an
// abandoned one; when room comes back the journal is completed.
func TestFullBackupDiskDuringVerify(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 20, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	backups := filepath.Join(t.TempDir(), "backups")
	os.Mkdir(backups, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", backups).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs (the tests run as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", backups).Run() })
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token), 0o600)
	e := &rotationExporter{startExporter(t, nil, "--rancher.container", sim.Name, "--rotation.token-file", tokenFile,
		"--rotation.backup-dir", backups, "--rotation.settle-time", "4s"), backups}
	rep := e.rotate(t, sim.Name, `{"strategy": "restart"}`)
	waitStep(t, e, rep.ID, "verify")
	filler := filepath.Join(backups, "filler")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").CombinedOutput(); err == nil || !strings.Contains(string(out), "No space left") {
		t.Fatalf("filling the tmpfs: %v %s", err, out)
	}
	rep = e.wait(t, rep.ID)
	if rep.State != rotation.Succeeded || rep.ContainerState != "running" {
		t.Fatalf("a rotation that succeeded while its journal could not be written: %s %q %+v", rep.State, rep.Error, rep.Steps)
	}
	// A request makes the exporter look for abandoned jobs: its own is not one. The new job
	// cannot journal its first step on the full disk, so it changes nothing.
	var second rotation.Report
	e.api(t, "POST", "/api/v1/containers/"+sim.Name+"/rotate", token, `{"strategy": "restart"}`, &second)
	if second = e.wait(t, second.ID); second.State != rotation.Failed || !strings.Contains(second.Error, "journal cannot be written") {
		t.Errorf("a rotation on a full backup disk: %s %q", second.State, second.Error)
	}
	if got := e.wait(t, rep.ID); got.State != rotation.Succeeded || strings.Contains(fmt.Sprint(got.Steps), "recovered after interruption") {
		t.Fatalf("the exporter recovered its own job: %+v", got.Steps)
	}
	os.Remove(filler)
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, err := os.ReadFile(filepath.Join(backups, "journal", rep.ID+".json"))
		var j rotation.Report
		if err == nil && json.Unmarshal(data, &j) == nil && j.State == rotation.Succeeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal was not completed once room came back: %s %v\n%s", data, err, e.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
