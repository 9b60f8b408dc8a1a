package rotation

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// pruneBackups removes a container's oldest backups beyond the keep newest, never one that a
// running or failed job names (it may be needed to put the files back). keep 0 keeps all.
func pruneBackups(dir, container string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type backup struct {
		file    string
		created time.Time
	}
	var backups []backup
	for _, e := range entries {
		stamp, mine := strings.CutPrefix(e.Name(), container+"-")
		stamp, tgz := strings.CutSuffix(stamp, ".tar.gz")
		if !mine || !tgz || !e.Type().IsRegular() {
			continue
		}
		if created, err := time.Parse(backupTimeFormat, stamp); err == nil { // else another container's, or not ours
			backups = append(backups, backup{filepath.Join(dir, e.Name()), created})
		}
	}
	if len(backups) <= keep {
		return nil, nil
	}
	slices.SortFunc(backups, func(a, b backup) int { return b.created.Compare(a.created) })
	needed := map[string]bool{}
	all, _ := journals(dir)
	for _, j := range all {
		if j.State != Succeeded && j.Backup != "" {
			needed[filepath.Base(j.Backup)] = true
		}
	}
	var removed []string
	for _, b := range backups[keep:] {
		if needed[filepath.Base(b.file)] {
			continue
		}
		if err := os.Remove(b.file); err != nil {
			return removed, err
		}
		removed = append(removed, b.file)
	}
	if len(removed) > 0 {
		return removed, syncDir(dir)
	}
	return nil, nil
}
