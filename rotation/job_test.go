package rotation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// stallingIn routes the job's crash points to the fake's events.
func stallingIn(f *fakeEngine, cfg Config) Config {
	cfg.Stall = f.point
	return cfg
}

func testConfig(dir string) Config {
	// The settle time outlasts the fake's failing starts, which end 50 ms after they begin.
	return Config{BackupDir: dir, SettleTime: 100 * time.Millisecond, StopTimeout: time.Second, Timeout: time.Minute, BackupKeep: 10, Owner: "test process"}
}

// runUntilDeath runs a new rotation of the fake's container and reports whether the process
// "died" in it (and where), as opposed to the job ending.
func runUntilDeath(t *testing.T, rot *Rotator, f *fakeEngine) (rep Report, death string) {
	t.Helper()
	dieAt, failOn := f.dieAt, f.failOn
	f.dieAt, f.failOn = -1, ""
	c, err := rot.Lookup(context.Background(), fakeID)
	if err != nil {
		t.Fatal(err)
	}
	job, err := rot.NewRotation(c, Request{Strategy: Auto}, TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.events, f.dieAt, f.failOn = nil, dieAt, failOn // events count from the job's start
	f.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			d, ok := r.(died)
			if !ok {
				panic(r)
			}
			death = d.event
		}
	}()
	return job.Run(context.Background(), nil), ""
}

// assertSafe checks what must hold after any job has ended: the container runs (or crash-loops
// as it did before), no helper is
// left, every key is unchanged, the journal is closed, the lock is free, and no temporary or
// unverifiable archive is in the backup directory.
func assertSafe(t *testing.T, f *fakeEngine, dir string, rep Report, keysBefore map[string][]byte) {
	t.Helper()
	if f.state != container.StateRunning && f.state != container.StateRestarting {
		t.Errorf("container left %s", f.state)
	}
	if len(f.helpers) != 0 {
		t.Errorf("helpers left: %v", f.helpers)
	}
	after := f.snapshot()
	for p, data := range keysBefore {
		if strings.HasSuffix(p, ".key") && !bytes.Equal(after[p], data) {
			t.Errorf("key %s changed", p)
		}
	}
	j, err := readJournal(dir, rep.ID)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	if j.State != rep.State || j.State == Running || len(j.Todo) != 0 {
		t.Errorf("journal not closed: state %s, todo %v", j.State, j.Todo)
	}
	if !lockFree(dir, fakeID) {
		t.Error("lock still held")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch {
		case strings.HasSuffix(e.Name(), ".tmp"):
			t.Errorf("temporary file left: %s", e.Name())
		case strings.HasSuffix(e.Name(), ".tar.gz"):
			if _, err := readBackup(filepath.Join(dir, e.Name())); err != nil {
				t.Errorf("backup %s: %v", e.Name(), err)
			}
		}
	}
}

// renewed tells whether every leaf of the fake expires later than before.
func renewed(t *testing.T, before, after map[string][]byte) bool {
	t.Helper()
	tb, ta := tree{}, tree{}
	for p, d := range before {
		tb.add(p, d)
	}
	for p, d := range after {
		ta.add(p, d)
	}
	for _, p := range tb.leaves() {
		if ta[p] == nil || !ta[p].NotAfter.After(tb[p].NotAfter) {
			return false
		}
	}
	return len(tb.leaves()) > 0
}

// TestRecoveryFromDeathAtEveryEvent kills the process before every engine call and stall point
// of a rotation in turn (a 2.3 rotation: new CAs, and the second start that the restart policy
// makes, or the job when there is none), and checks that the next process finishes the job:
// renewed, running, keys kept, nothing left over.
func TestRecoveryFromDeathAtEveryEvent(t *testing.T) {
	for _, policy := range []bool{false, true} {
		clean := newFakeEngine(t, 10)
		clean.policy = policy
		rep, _ := runUntilDeath(t, New(clean, stallingIn(clean, testConfig(t.TempDir())), slog.New(slog.DiscardHandler), nil), clean)
		if rep.State != Succeeded {
			t.Fatalf("clean run: %+v", rep)
		}
		points := runsOf(clean.events)
		t.Logf("restart policy %v: %d death points: %s", policy, len(points), strings.Join(points, " "))
		for i, ev := range points {
			f := newFakeEngine(t, 10)
			f.policy = policy
			f.dieAt = i
			dir := t.TempDir()
			before := f.snapshot()
			logger := slog.New(slog.DiscardHandler)
			rep, death := runUntilDeath(t, New(f, stallingIn(f, testConfig(dir)), logger, nil), f)
			if death == "" {
				t.Fatalf("event %d (%s): the process did not die, job %s", i, ev, rep.State)
			}
			jobs, err := New(f, stallingIn(f, testConfig(dir)), logger, nil).Resumable(context.Background(), true)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("died at %d (%s): recovered %d jobs, %v", i, death, len(jobs), err)
			}
			rep = jobs[0].Run(context.Background(), nil)
			if rep.State != Succeeded {
				t.Fatalf("died at %d (%s), restart policy %v: recovered job %s: %s\n%+v", i, death, policy, rep.State, rep.Error, rep.Steps)
			}
			if !hasStep(rep, "recover", "recovered after interruption: test process died") {
				t.Errorf("died at %d (%s): no recovery step: %+v", i, death, rep.Steps)
			}
			assertSafe(t, f, dir, rep, before)
			if !renewed(t, before, f.snapshot()) {
				t.Errorf("died at %d (%s): leaves not renewed", i, death)
			}
		}
	}
}

func hasStep(rep Report, name StepName, detail string) bool {
	for _, s := range rep.Steps {
		if s.Name == name && strings.Contains(s.Detail, detail) {
			return true
		}
	}
	return false
}

// TestFailureAtEveryEventRollsBack makes each kind of engine call fail once: the job fails with
// that error, and the container is back up with its keys, the backup kept.
func TestFailureAtEveryEventRollsBack(t *testing.T) {
	for _, ev := range []string{"stop", "helper-create", "helper-run", "start", "logs", "inspect"} {
		f := newFakeEngine(t, 10)
		f.failOn = ev
		dir := t.TempDir()
		before := f.snapshot()
		rep, _ := runUntilDeath(t, New(f, stallingIn(f, testConfig(dir)), slog.New(slog.DiscardHandler), nil), f)
		if rep.State != Failed || !strings.Contains(rep.Error, errFake.Error()) {
			t.Fatalf("%s failing: %s %q", ev, rep.State, rep.Error)
		}
		if _, err := os.Stat(rep.Backup); err != nil {
			t.Errorf("%s failing: backup not kept: %v", ev, err)
		}
		t.Run(ev, func(t *testing.T) { assertSafe(t, f, dir, rep, before) })
	}
}

// TestRecoveredJobThatCannotFinishPutsTheBackupBack: a process dies after removing the leaves,
// and the next cannot start the container at first: the backup's files are put back and the
// container started, the job failed with the story in its steps.
func TestRecoveredJobThatCannotFinishPutsTheBackupBack(t *testing.T) {
	f := newFakeEngine(t, 10)
	dir := t.TempDir()
	before := f.snapshot()
	logger := slog.New(slog.DiscardHandler)
	clean := newFakeEngine(t, 10)
	runUntilDeath(t, New(clean, stallingIn(clean, testConfig(t.TempDir())), logger, nil), clean)
	f.dieAt = slices.Index(runsOf(clean.events), "start")
	if _, death := runUntilDeath(t, New(f, stallingIn(f, testConfig(dir)), logger, nil), f); death != "start" {
		t.Fatalf("died at %q", death)
	}
	jobs, err := New(f, stallingIn(f, testConfig(dir)), logger, nil).Resumable(context.Background(), true)
	if err != nil || len(jobs) != 1 {
		t.Fatal(len(jobs), err)
	}
	f.failOn = "start"
	rep := jobs[0].Run(context.Background(), nil)
	if rep.State != Failed || !hasStep(rep, "restore-backup", "put back") || !hasStep(rep, "recover", "started it again") {
		t.Fatalf("%s %q %+v", rep.State, rep.Error, rep.Steps)
	}
	assertSafe(t, f, dir, rep, before)
	after := f.snapshot()
	for p, data := range before {
		if !bytes.Equal(after[p], data) {
			t.Errorf("%s differs from the backup", p)
		}
	}
}

func TestLockNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := tryLock(dir, "abc", "job1", "rotate CLI pid 7")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tryLock(dir, "abc", "job2", "serve")
	var busy *ErrBusy
	if !errors.As(err, &busy) || busy.JobID != "job1" || !strings.Contains(err.Error(), "rotate CLI pid 7") {
		t.Fatalf("second lock: %v", err)
	}
	if lockFree(dir, "abc") {
		t.Fatal("held lock reported free")
	}
	if _, err := tryLock(dir, "other", "job3", "serve"); err != nil {
		t.Fatalf("another container's lock: %v", err)
	}
	l.release()
	if !lockFree(dir, "abc") {
		t.Fatal("released lock reported held")
	}
	if holder, _ := os.ReadFile(lockFile(dir, "abc")); !strings.Contains(string(holder), "job job1 rotate CLI pid 7") {
		t.Fatalf("the probe overwrote the last holder: %q", holder)
	}
}

// TestAbandonedReadsOnlyTheJournals: finding the jobs a dead process left makes no engine call,
// so it can run before every request and every round of the automatic rotation; a second look
// while the first finder holds them finds none.
func TestAbandonedReadsOnlyTheJournals(t *testing.T) {
	f := newFakeEngine(t, 10)
	dir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	clean := newFakeEngine(t, 10)
	runUntilDeath(t, New(clean, stallingIn(clean, testConfig(t.TempDir())), logger, nil), clean)
	f.dieAt = slices.Index(runsOf(clean.events), "start")
	if _, death := runUntilDeath(t, New(f, stallingIn(f, testConfig(dir)), logger, nil), f); death != "start" {
		t.Fatalf("died at %q", death)
	}
	f.events = nil
	rot := New(f, stallingIn(f, testConfig(dir)), logger, nil)
	jobs, err := rot.Resumable(context.Background(), false)
	if err != nil || len(jobs) != 1 || len(f.events) != 0 {
		t.Fatalf("abandoned %d jobs, %v, engine calls %v", len(jobs), err, f.events)
	}
	if again, _ := rot.Resumable(context.Background(), false); len(again) != 0 {
		t.Fatalf("a held job found again: %d", len(again))
	}
	if rep := jobs[0].Run(context.Background(), nil); rep.State != Succeeded {
		t.Fatalf("%s: %s", rep.State, rep.Error)
	}
}

func TestBusyContainerRefusesASecondJob(t *testing.T) {
	f := newFakeEngine(t, 10)
	rot := New(f, stallingIn(f, testConfig(t.TempDir())), slog.New(slog.DiscardHandler), nil)
	c, _ := rot.Lookup(context.Background(), fakeID)
	first, err := rot.NewRotation(c, Request{Strategy: Auto}, TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rot.NewRestore(c, "x.tar.gz", TriggerCLI)
	var busy *ErrBusy
	if !errors.As(err, &busy) || busy.JobID != first.Report().ID {
		t.Fatalf("second job: %v", err)
	}
	first.Run(context.Background(), nil)
	if _, err := rot.NewRotation(c, Request{Strategy: Auto}, TriggerCLI); err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
}

func TestRetentionKeepsNewestAndNeededBackups(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var files []string
	for i := range 13 {
		files = append(files, backupName(dir, "rancher", base.Add(time.Duration(i)*time.Hour)))
	}
	others := []string{backupName(dir, "rancher-2", base), filepath.Join(dir, "rancher-notes.tar.gz"), filepath.Join(dir, ".x.tar.gz.tmp")}
	for _, file := range append(append([]string{}, files...), others...) {
		os.WriteFile(file, []byte("x"), 0o600)
	}
	// The oldest is named by a failed job, the second by a running one.
	for i, state := range []State{Failed, Running} {
		j := journal{Report: Report{ID: "j" + string(state), State: state, Backup: files[i], Created: base}}
		if err := j.save(dir); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := pruneBackups(dir, "rancher", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != files[2] {
		t.Fatalf("removed %v, want only %s", removed, files[2])
	}
	for _, file := range append(append(files[:2:2], files[3:]...), others...) {
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s was removed", file)
		}
	}
}

func TestPreflightRefusesWithoutSpaceForTwoTrees(t *testing.T) {
	dir := t.TempDir()
	if err := checkFreeSpace(dir, 1<<62); err == nil || !strings.Contains(err.Error(), "less than twice") {
		t.Fatalf("%v", err)
	}
	if err := checkFreeSpace(dir, 1); err != nil {
		t.Fatal(err)
	}
}

func TestWriteBackupNeverNamesAPartialArchive(t *testing.T) {
	dir := t.TempDir()
	f := newFakeEngine(t, 10)
	c := rancherContainer(t, f)
	data, m, _, err := archive(context.Background(), f, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "rancher-x.tar.gz")
	if err := writeBackup(file, ".j.tar.gz.tmp", data[:len(data)/2], m, nil); err == nil {
		t.Fatal("a truncated archive was accepted")
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the truncated archive got the final name: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left: %v", entries)
	}
	if err := writeBackup(file, ".j.tar.gz.tmp", data, m, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := readBackup(file)
	if sameManifest(m, got) != nil {
		t.Fatal("backup differs")
	}
}

func rancherContainer(t *testing.T, f *fakeEngine) rancher.Container {
	t.Helper()
	rot := New(f, stallingIn(f, testConfig(t.TempDir())), slog.New(slog.DiscardHandler), nil)
	c, err := rot.Lookup(context.Background(), fakeID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJournalThatCannotBeWrittenDuringVerify: the backup directory stops taking writes while the
// last verify runs (a full disk). The rotation has succeeded: it ends succeeded, the same process
// never takes its own job for one a dead process left, and the journal is completed once the
// directory takes writes again.
func TestJournalThatCannotBeWrittenDuringVerify(t *testing.T) {
	f := newFakeEngine(t, 10)
	f.policy = true
	dir := t.TempDir()
	aside := filepath.Join(t.TempDir(), "journal")
	f.before = map[string]func(){"api": func() { // inside the final verify, after the last start
		if err := os.Rename(journalDir(dir), aside); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(journalDir(dir), nil, 0o600) // a file where the directory was: every write fails
	}}
	rot := New(f, stallingIn(f, testConfig(dir)), slog.New(slog.DiscardHandler), nil)
	c, _ := rot.Lookup(context.Background(), fakeID)
	job, err := rot.NewRotation(c, Request{Strategy: Auto}, TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	rep := job.Run(context.Background(), nil)
	if rep.State != Succeeded || rep.ContainerState != "running" || !job.journalBehind() {
		t.Fatalf("%s %q, behind %v: a rotation that succeeded must say so: %+v", rep.State, rep.Error, job.journalBehind(), rep.Steps)
	}

	// The directory takes writes again, the journal still says running.
	os.Remove(journalDir(dir))
	if err := os.Rename(aside, journalDir(dir)); err != nil {
		t.Fatal(err)
	}
	if j, err := readJournal(dir, rep.ID); err != nil || j.State != Running {
		t.Fatalf("journal on disk: %v %v", j, err)
	}
	if found, err := rot.Resumable(context.Background(), false); err != nil || len(found) != 0 {
		t.Fatalf("the live process found %d abandoned jobs (%v): its own", len(found), err)
	}
	if err := job.save(); err != nil {
		t.Fatal(err)
	}
	if j, err := readJournal(dir, rep.ID); err != nil || j.State != Succeeded || len(j.Todo) != 0 {
		t.Fatalf("journal after the catch-up: %+v %v", j, err)
	}
}

// TestPolicyStartBeforeTheJobLooks: the start after a CA change fails and the restart policy
// starts the container again before the job inspects it (a loaded host): the second start is
// the policy's, not one more of the job's.
func TestPolicyStartBeforeTheJobLooks(t *testing.T) {
	f := newFakeEngine(t, -2)
	f.policy = true
	instant := time.Duration(0)
	f.failsAt = &instant
	rot := New(f, testConfig(t.TempDir()), slog.New(slog.DiscardHandler), nil)
	c, _ := rot.Lookup(context.Background(), fakeID)
	job, err := rot.NewRotation(c, Request{Strategy: Auto}, TriggerCLI)
	if err != nil {
		t.Fatal(err)
	}
	rep := job.Run(context.Background(), nil)
	var second *Step
	for i, s := range rep.Steps {
		if s.Name == StepSecondStart {
			second = &rep.Steps[i]
		}
	}
	if rep.State != Succeeded || second == nil || !strings.Contains(second.Detail, "by its restart policy") {
		t.Fatalf("%s %q: second start %+v", rep.State, rep.Error, second)
	}
	if f.starts != 2 { // the job's and the policy's: none more
		t.Errorf("%d starts", f.starts)
	}
}
