package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// scraper scrapes the exporter every second, as a (fast) Prometheus would, until the test ends.
func scrapeEverySecond(t *testing.T, e *rotationExporter) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				if resp, err := http.Get(e.url + "/metrics"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// autoRotations are the automatic rotations the exporter counted, by result.
func autoRotations(mfs map[string]*dto.MetricFamily, container string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range series(mfs, "rancher_cert_exporter_rotations_total", map[string]string{"container": container, "trigger": "auto"}) {
		out[s.labels["result"]] += s.value
	}
	return out
}

// waitAutoRotation waits until the exporter has ended an automatic rotation of the container.
func waitAutoRotation(t *testing.T, e *rotationExporter, container string, timeout time.Duration) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := autoRotations(e.scrape(t), container); len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no automatic rotation of %s within %s:\n%s", container, timeout, e.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// earliestK3sLeaf is the earliest expiry of the container's k3s leaves the exporter reports.
func earliestK3sLeaf(t *testing.T, mfs map[string]*dto.MetricFamily, container string) time.Time {
	t.Helper()
	earliest := math.Inf(1)
	for _, s := range series(mfs, "cert_not_after_seconds", map[string]string{"container": container, "source": "k3s", "ca": "false"}) {
		if !strings.HasPrefix(s.labels["path"], "/var/lib/rancher/management-state/") {
			earliest = math.Min(earliest, s.value)
		}
	}
	if math.IsInf(earliest, 1) {
		t.Fatalf("no k3s leaf of %s exported", container)
	}
	return time.Unix(int64(earliest), 0)
}

func nextAutoRotation(mfs map[string]*dto.MetricFamily, container string) (time.Time, bool) {
	s := series(mfs, "rancher_cert_exporter_auto_rotation_next_timestamp_seconds", map[string]string{"container": container})
	if len(s) != 1 {
		return time.Time{}, false
	}
	return time.Unix(int64(s[0].value), 0), true
}

// TestAutoRotationRenewsBeforeExpiryOnEveryRelease: leaves 3 days from expiry, --rotation.auto=on
// and a window open any time: each release is rotated (with the strategy auto picks for it)
// within a few scrapes, runs, keeps its keys, and its earliest k3s leaf is no longer due.
func TestAutoRotationRenewsBeforeExpiryOnEveryRelease(t *testing.T) {
	t.Parallel()
	for _, p := range harness.Profiles {
		t.Run(p.Rancher, func(t *testing.T) {
			t.Parallel()
			sim := engine.StartSim(t, harness.SimOptions{Profile: p, LeafDays: 3})
			engine.WaitLog(t, sim.ID, simReady, time.Minute)
			keys := fileHashes(t, copyTree(t, sim.Name), ".key")
			e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=on")
			started := time.Now()
			scrapeEverySecond(t, e)
			got := waitAutoRotation(t, e, sim.Name, 2*time.Minute)
			if got["succeeded"] != 1 || len(got) != 1 {
				t.Fatalf("automatic rotations %v:\n%s", got, e.log)
			}
			t.Logf("%s rotated %s after the exporter started", p.Rancher, time.Since(started).Round(time.Millisecond))

			var jobs []rotation.Report
			e.api(t, "GET", "/api/v1/rotations", token, "", &jobs)
			if len(jobs) != 1 || jobs[0].Trigger != rotation.TriggerAuto || jobs[0].State != rotation.Succeeded || jobs[0].RequestedStrategy != rotation.Auto {
				t.Fatalf("jobs %+v", jobs)
			}
			if state, _ := inspect(t, sim.ID); state != "running" {
				t.Errorf("container %s", state)
			}
			sameFiles(t, "keys", keys, fileHashes(t, copyTree(t, sim.Name), ".key"), releaseOf(t, p).keys())
			deadline := time.Now().Add(30 * time.Second)
			for {
				mfs := e.scrape(t)
				_, planned := nextAutoRotation(mfs, sim.Name)
				if earliest := earliestK3sLeaf(t, mfs, sim.Name); earliest.After(time.Now().Add(300*day)) && !planned {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the rotation the earliest k3s leaf expires %s, next rotation planned %v", earliestK3sLeaf(t, mfs, sim.Name), planned)
				}
				time.Sleep(time.Second)
			}
			for _, want := range []string{"decision=rotate", "automatic rotation started", "automatic rotation succeeded"} {
				if !strings.Contains(e.log.String(), want) {
					t.Errorf("the log does not say %q:\n%s", want, e.log)
				}
			}
		})
	}
}

// closedWindow is a one-hour window two days from now, in UTC, and its opening.
func closedWindow() (string, time.Time) {
	day := time.Now().UTC().AddDate(0, 0, 2)
	opening := time.Date(day.Year(), day.Month(), day.Day(), 2, 0, 0, 0, time.UTC)
	return fmt.Sprintf("%s 02:00-03:00 UTC", opening.Weekday().String()[:3]), opening
}

// TestAutoRotationWaitsForTheWindow: outside the window nothing happens, the metric and the
// status page name the opening; a stopped server is not rotated, and the log says so.
func TestAutoRotationWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	due := engine.StartSim(t, harness.SimOptions{LeafDays: 3})
	stopped := engine.StartSim(t, harness.SimOptions{LeafDays: 3})
	engine.WaitLog(t, due.ID, simReady, 30*time.Second)
	engine.WaitLog(t, stopped.ID, simReady, 30*time.Second)
	docker(t, "stop", "-t", "5", stopped.Name)
	before := fileHashes(t, copyTree(t, due.Name), "")
	window, opening := closedWindow()
	e := startRotationExporter(t, nil, "--rancher.container", due.Name, "--rancher.container", stopped.Name,
		"--rotation.auto=on", "--rotation.window", window)
	scrapeEverySecond(t, e)

	deadline := time.Now().Add(30 * time.Second)
	for {
		if next, ok := nextAutoRotation(e.scrape(t), due.Name); ok {
			if !next.Equal(opening) {
				t.Fatalf("next automatic rotation %s, want the opening of %q: %s", next, window, opening)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no next automatic rotation of %s:\n%s", due.Name, e.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(12 * time.Second) // two rounds of the scheduler more
	mfs := e.scrape(t)
	if got := autoRotations(mfs, due.Name); len(got) > 0 {
		t.Fatalf("rotated outside the window: %v", got)
	}
	if _, ok := nextAutoRotation(mfs, stopped.Name); ok {
		t.Error("a rotation is planned for a stopped server")
	}
	sameFiles(t, "files outside the window", before, fileHashes(t, copyTree(t, due.Name), ""), releaseOf(t, harness.V23).certFiles())
	log := e.log.String()
	for _, want := range []string{
		"container=" + due.Name + " decision=wait",
		"at=" + opening.Format(time.RFC3339),
		"container=" + stopped.Name + " decision=skip",
		"a stopped server is not rotated automatically",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
	page := e.page(t)
	if want := opening.Format("Mon 2006-01-02 15:04 MST"); !strings.Contains(page, "Automatic rotation") || !strings.Contains(page, want) {
		t.Errorf("the status page does not show the next automatic rotation at %s", want)
	}
}

// TestAutoRotationPlanChangesNothing: --rotation.auto=plan says what it would do and when, and
// does nothing.
func TestAutoRotationPlanChangesNothing(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 3})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	before := fileHashes(t, copyTree(t, sim.Name), "")
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=plan")
	scrapeEverySecond(t, e)
	e.log.waitFor(t, "decision=\"would rotate\"", 30*time.Second)
	time.Sleep(12 * time.Second)
	mfs := e.scrape(t)
	if next, ok := nextAutoRotation(mfs, sim.Name); !ok || time.Since(next) > 30*time.Second {
		t.Errorf("plan: next automatic rotation %s (%v), want now", next, ok)
	}
	if got := autoRotations(mfs, sim.Name); len(got) > 0 {
		t.Fatalf("plan mode rotated: %v", got)
	}
	if n := strings.Count(e.log.String(), "decision=\"would rotate\""); n != 1 {
		t.Errorf("the decision was logged %d times, want once while it holds", n)
	}
	var jobs []rotation.Report
	if e.api(t, "GET", "/api/v1/rotations", token, "", &jobs); len(jobs) != 0 {
		t.Errorf("plan mode ran jobs: %+v", jobs)
	}
	sameFiles(t, "files in plan mode", before, fileHashes(t, copyTree(t, sim.Name), ""), releaseOf(t, harness.V23).certFiles())
}

// TestAutoRotationFailureBacksOff: a rotation that fails (no rm in the image) is tried once,
// then not before the backoff has passed, also after the exporter restarts.
func TestAutoRotationFailureBacksOff(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V23NoRm, LeafDays: 3})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	dir := t.TempDir()
	args := []string{"--rancher.container", sim.Name, "--rotation.auto=on"}
	e := startRotationExporterIn(t, dir, nil, args...)
	scrapeEverySecond(t, e)
	if got := waitAutoRotation(t, e, sim.Name, time.Minute); got["failed"] != 1 {
		t.Fatalf("automatic rotations %v", got)
	}
	time.Sleep(12 * time.Second) // two rounds of the scheduler more
	mfs := e.scrape(t)
	if got := autoRotations(mfs, sim.Name); got["failed"] != 1 || got["succeeded"] != 0 {
		t.Fatalf("after the failure: %v, want one attempt", got)
	}
	failedAt := value(t, mfs, "rancher_cert_exporter_rotation_last_timestamp_seconds", map[string]string{"container": sim.Name, "trigger": "auto", "result": "failed"})
	next, ok := nextAutoRotation(mfs, sim.Name)
	if want := time.Unix(int64(failedAt), 0).Add(24 * time.Hour); !ok || next.Sub(want).Abs() > 2*time.Second {
		t.Errorf("next automatic rotation %s (%v), want the end of the backoff %s", next, ok, want)
	}
	if !strings.Contains(e.log.String(), "automatic rotation failed") {
		t.Errorf("the failure is not logged:\n%s", e.log)
	}
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Errorf("container %s after the failed rotation", state)
	}

	// A restarted exporter remembers the failure: still the backoff, and the alert's series.
	e.cmd.Process.Kill()
	e.cmd.Wait()
	e = startRotationExporterIn(t, dir, nil, args...)
	scrapeEverySecond(t, e)
	time.Sleep(12 * time.Second)
	mfs = e.scrape(t)
	if got := autoRotations(mfs, sim.Name); len(got) > 0 {
		t.Fatalf("the restarted exporter tried again within the backoff: %v", got)
	}
	if v := value(t, mfs, "rancher_cert_exporter_rotation_last_timestamp_seconds", map[string]string{"container": sim.Name, "trigger": "auto", "result": "failed"}); v != failedAt {
		t.Errorf("last failure after the restart %v, want %v", v, failedAt)
	}
}

// TestAutoRotationRotatesAnExpiredServerAtOnce: expired and crash-looping, outside the window:
// rotated at once.
func TestAutoRotationRotatesAnExpiredServerAtOnce(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -2, CrashLoop: true})
	waitRestarts(t, sim, 1)
	window, _ := closedWindow()
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=on", "--rotation.window", window)
	scrapeEverySecond(t, e)
	if got := waitAutoRotation(t, e, sim.Name, time.Minute); got["succeeded"] != 1 {
		t.Fatalf("automatic rotations %v:\n%s", got, e.log)
	}
	if !strings.Contains(e.log.String(), "the window does not wait") {
		t.Errorf("the log does not say why the window was not waited for:\n%s", e.log)
	}
	time.Sleep(2 * time.Second)
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Errorf("container %s", state)
	}
	if earliest := earliestK3sLeaf(t, e.scrape(t), sim.Name); earliest.Before(time.Now().Add(300 * day)) {
		t.Errorf("earliest k3s leaf expires %s after the rotation", earliest)
	}
}

// TestAutoRotationFinishesWhatADeadCLILeft: with automatic rotation on, a rotate that dies
// after stopping the container is finished by the running exporter within a few rounds —
// no request and no restart needed.
func TestAutoRotationFinishesWhatADeadCLILeft(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 200, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=on")
	cli := exec.Command(exporterBinary(t), "rotate", "--rancher.container", sim.Name, "--rotation.backup-dir", e.backups, "--rotation.settle-time", "3s")
	cli.Env = append(os.Environ(), rotation.StallEnv+"=stop")
	var cliErr syncBuffer
	cli.Stderr, cli.SysProcAttr = &cliErr, dieWithTest
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	cliErr.waitFor(t, "stalled at stop", time.Minute)
	cli.Process.Kill()
	cli.Wait()
	killed := time.Now()
	journals, _ := filepath.Glob(filepath.Join(e.backups, "journal", "*.json"))
	if len(journals) != 1 {
		t.Fatalf("journals %v", journals)
	}
	rep := e.waitWithin(t, strings.TrimSuffix(filepath.Base(journals[0]), ".json"), time.Minute)
	t.Logf("the exporter finished the dead CLI's job %s after the kill: %s", time.Since(killed).Round(time.Millisecond), rep.State)
	if rep.State != rotation.Succeeded || rep.Trigger != rotation.TriggerCLI {
		t.Fatalf("the CLI's job: %+v", rep)
	}
	if state, _ := inspect(t, sim.ID); state != "running" {
		t.Errorf("container %s", state)
	}
}
