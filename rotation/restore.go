package rotation

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"strings"
)

// restore puts a backup's files back: stop, copy the archive in, start, compare the bytes.
func (j *Job) restore(ctx context.Context) error {
	if err := j.step("preflight", func() (string, error) {
		want, err := readBackup(j.j.Backup)
		if err != nil {
			return "", fmt.Errorf("read backup %s: %w", j.j.Backup, err)
		}
		j.set(func(jr *journal) {
			jr.Todo = []todo{{Name: "stop"}, {Name: "copy"}, {Name: "start"}, {Name: "verify"}}
		})
		return fmt.Sprintf("%s: %d entries", j.j.Backup, len(want)), nil
	}); err != nil {
		return err
	}
	return j.runTodo(ctx)
}

// verifyRestore checks that the container holds the backup's bytes; whether it then runs is
// the restored certificates' business.
func (j *Job) verifyRestore(ctx context.Context) (string, error) {
	want, err := readBackup(j.j.Backup)
	if err != nil {
		return "", err
	}
	_, got, _, err := archive(ctx, j.eng, j.c) // checksums what the container holds now
	if err != nil {
		return "", err
	}
	var differ []string
	files := 0
	for name, sum := range want {
		if sum == "" {
			continue
		}
		files++
		if got[name] != sum {
			differ = append(differ, "/"+name)
		}
	}
	if len(differ) > 0 {
		return "", fmt.Errorf("%d files differ from the backup: %s", len(differ), strings.Join(differ, ", "))
	}
	return fmt.Sprintf("%d files byte-identical to the backup", files), nil
}

// copyIn extracts the backup onto "/" of the (stopped) container; entry names are the paths
// inside it.
func (j *Job) copyIn(ctx context.Context) error {
	f, err := os.Open(j.j.Backup)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	return j.eng.CopyTo(ctx, j.j.ContainerID, gz)
}

// putBackupBack restores the backup when a recovered job cannot be finished: stop, copy, and
// the start that follows in the rollback.
func (j *Job) putBackupBack(ctx context.Context) (string, error) {
	if err := j.eng.Stop(ctx, j.j.ContainerID); err != nil {
		return "", err
	}
	if err := j.copyIn(ctx); err != nil {
		return "", err
	}
	return "the files of " + j.j.Backup + " put back", nil
}
