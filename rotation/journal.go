package rotation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// journal is what a job records durably before and after every step that changes anything:
// its report (plan, steps, outcome) and what is left to do. A process that starts finds the
// journals of jobs a dead process left unfinished, and finishes them.
type journal struct {
	Report
	ContainerID string `json:"container_id"`
	// WasUp: the container ran or crash-looped before the job, so the job must not leave it
	// stopped.
	WasUp bool `json:"was_up"`
	// Todo are the steps still to run; the first may have been interrupted. Every step is
	// idempotent, so finishing a job is running them.
	Todo []todo `json:"todo,omitempty"`
	// Owner is the process running the job, for whoever finds the lock taken.
	Owner string `json:"owner"`
	// RestartsAtStart is the container's restart count right after the job last started it:
	// more later means its restart policy started it again.
	RestartsAtStart int `json:"restarts_at_start,omitempty"`
}

// todo is one step to run.
type todo struct {
	Name  StepName `json:"name"`
	Files []string `json:"files,omitempty"` // for remove: exactly these
	Skip  string   `json:"skip,omitempty"`  // recorded as skipped, with this reason
	// Wait is for the delete-secret put off until after the start: wait for the API server.
	Wait bool `json:"wait,omitempty"`
	// Final is the verify after the second restart: no third.
	Final bool `json:"final,omitempty"`
}

// journalDir holds the journals under the backup directory.
func journalDir(backupDir string) string { return filepath.Join(backupDir, "journal") }

func journalFile(backupDir, id string) string {
	return filepath.Join(journalDir(backupDir), id+".json")
}

// save writes the journal atomically: a temporary file, fsynced, renamed over the old one,
// and the directory fsynced, so a crash leaves the old journal or the new, never half of one.
func (j *journal) save(backupDir string) error {
	dir := journalDir(backupDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return writeFileSync(journalFile(backupDir, j.ID), data)
}

// writeFileSync replaces file with data durably.
func writeFileSync(file string, data []byte) error {
	if err := writeDurably(file, "."+filepath.Base(file)+".tmp", data, nil); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// readJournal reads a job's journal.
func readJournal(backupDir, id string) (*journal, error) {
	if strings.ContainsAny(id, `/\.`) {
		return nil, fs.ErrNotExist
	}
	data, err := os.ReadFile(journalFile(backupDir, id))
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("journal %s: %w", id, err)
	}
	return &j, nil
}

// journals reads every journal, newest first. A journal that does not parse is skipped with
// its error: one bad file must not hide the others.
func journals(backupDir string) ([]*journal, []error) {
	entries, err := os.ReadDir(journalDir(backupDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	var out []*journal
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		j, err := readJournal(backupDir, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *journal) int { return b.Created.Compare(a.Created) })
	return out, errs
}

// keepJournals is how many finished journals are kept for GET /api/v1/rotations.
const keepJournals = 100

// pruneJournals removes the oldest finished journals beyond keepJournals.
func pruneJournals(backupDir string) {
	all, _ := journals(backupDir)
	finished := 0
	for _, j := range all {
		if j.State == Running {
			continue
		}
		if finished++; finished > keepJournals {
			os.Remove(journalFile(backupDir, j.ID))
		}
	}
}

// Reports lists the recent jobs of every process, newest first: the journals, with the live
// reports of this process's jobs in place of theirs.
func (r *Rotator) Reports(live *Jobs) []Report {
	byID := map[string]Report{}
	for _, job := range live.All() {
		rep := job.Report()
		byID[rep.ID] = rep
	}
	all, errs := journals(r.cfg.BackupDir)
	for _, err := range errs {
		r.logger.Warn("unreadable journal", "err", err)
	}
	for _, j := range all {
		if _, ok := byID[j.ID]; !ok {
			byID[j.ID] = j.Report
		}
	}
	out := make([]Report, 0, len(byID))
	for _, rep := range byID {
		out = append(out, rep)
	}
	slices.SortFunc(out, func(a, b Report) int { return b.Created.Compare(a.Created) })
	return out
}

// Report is one job: of this process, else of an earlier one from its journal; an error that
// is fs.ErrNotExist when there is no such job.
func (r *Rotator) Report(live *Jobs, id string) (Report, error) {
	if job, ok := live.Get(id); ok {
		return job.Report(), nil
	}
	j, err := readJournal(r.cfg.BackupDir, id)
	if err != nil {
		return Report{}, err
	}
	return j.Report, nil
}
