package rotation

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// restore puts a backup's files back: stop, copy the archive in, start, compare the bytes.
func (j *Job) restore(ctx context.Context) (err error) {
	var want manifest
	if err := j.step("preflight", func() (string, error) {
		var err error
		if want, err = readBackup(j.report.Backup); err != nil {
			return "", fmt.Errorf("read backup %s: %w", j.report.Backup, err)
		}
		return fmt.Sprintf("%s: %d entries", j.report.Backup, len(want)), nil
	}); err != nil {
		return err
	}
	defer j.recoverOnFailure(&err)
	if j.c.State == container.StateRunning || j.c.State == container.StateRestarting {
		if err := j.step("stop", func() (string, error) { return "", j.eng.stop(ctx, j.c.ID) }); err != nil {
			return err
		}
	}
	if err := j.step("copy", func() (string, error) { return "", j.copyIn(ctx) }); err != nil {
		return err
	}
	if err := j.step("start", func() (string, error) { return "", j.eng.start(ctx, j.c.ID) }); err != nil {
		return err
	}
	return j.step("verify", func() (string, error) {
		got, err := archiveTree(ctx, j.eng.cli, j.c, io.Discard) // checksums what the container holds now
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
	})
}

// copyIn extracts the backup onto "/" of the (stopped) container; entry names are the paths
// inside it.
func (j *Job) copyIn(ctx context.Context) error {
	f, err := os.Open(j.report.Backup)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	_, err = j.eng.cli.CopyToContainer(ctx, j.c.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: gz})
	return err
}
