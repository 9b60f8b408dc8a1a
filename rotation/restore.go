package rotation

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// restore puts a backup's files back: stop, copy the archive in, start, compare the bytes.
func (j *Job) restore(ctx context.Context) error {
	if err := j.step("preflight", func() (string, error) {
		want, err := readBackup(j.j.Backup)
		if err != nil {
			return "", fmt.Errorf("read backup %s: %w", j.j.Backup, err)
		}
		steps := []todo{{Name: "stop"}, {Name: "copy"}, {Name: "start"}, {Name: "verify"}}
		objs, err := backupObjects(j.j.Backup)
		if err != nil {
			return "", fmt.Errorf("read backup %s: %w", j.j.Backup, err)
		}
		if len(objs) > 0 {
			steps = append(steps, todo{Name: StepRestoreObjs})
		}
		j.set(func(jr *journal) { jr.Todo = steps })
		return fmt.Sprintf("%s: %d entries, %d of them objects of the cluster", j.j.Backup, len(want), len(objs)), nil
	}); err != nil {
		return err
	}
	return j.runTodo(ctx)
}

// verifyRestore checks that the container holds the backup's bytes; whether it then runs is
// the restored certificates' business — but a start that ended on the kubeconfig of the CA the
// backup replaced gets its second start, as after a rotation.
func (j *Job) verifyRestore(ctx context.Context, final bool) (string, error) {
	want, err := readBackup(j.j.Backup)
	if err != nil {
		return "", err
	}
	_, got, _, err := archive(ctx, j.rot.eng, j.c, nil) // checksums what the container holds now
	if err != nil {
		return "", err
	}
	var differ []string
	files := 0
	for name, sum := range want {
		if sum == "" || strings.HasPrefix(name, clusterEntries) {
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
	detail := fmt.Sprintf("%d files byte-identical to the backup", files)
	switch err := j.settle(ctx, j.j.ContainerID, j.logsSince()); {
	case errors.Is(err, errUnknownAuthority) && !final:
		j.insertAfter("", todo{Name: "second-start"}, todo{Name: "verify", Final: true})
		return detail + "; the start ended on x509: certificate signed by unknown authority (the kubeconfig of the replaced CA): a second start follows", nil
	case err != nil:
		return detail + "; the container does not run cleanly with them: " + err.Error(), nil
	}
	return detail + "; the container runs", nil
}

// copyIn extracts the backup's files onto "/" of the (stopped) container; entry names are the
// paths inside it. The objects of the cluster are left out: restore-secrets puts them back.
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
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(filesOnly(gz, pw)) }()
	err = j.rot.eng.CopyTo(ctx, j.j.ContainerID, pr)
	pr.CloseWithError(err)
	return err
}

// filesOnly copies a tar without the entries of cluster objects.
func filesOnly(r io.Reader, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := rancher.EachEntry(r, func(hdr *tar.Header, content io.Reader) error {
		if strings.HasPrefix(hdr.Name, clusterEntries) {
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, content)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// putBackupBack restores the backup when a recovered job cannot be finished: stop, copy, and
// the start that follows in the rollback.
func (j *Job) putBackupBack(ctx context.Context) (string, error) {
	if err := j.rot.eng.Stop(ctx, j.j.ContainerID); err != nil {
		return "", err
	}
	if err := j.copyIn(ctx); err != nil {
		return "", err
	}
	return "the files of " + j.j.Backup + " put back", nil
}
