package rotation

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// manifest is the content of a backup: entry name to sha256 of its bytes ("" for
// directories and links).
type manifest map[string]string

// backupTimeFormat names backups by the creation of their job: sortable, and the same when a
// recovered job writes its backup again.
const backupTimeFormat = "20060102T150405.000Z"

// backupName is the file of a job's backup.
func backupName(dir, container string, created time.Time) string {
	return filepath.Join(dir, container+"-"+created.UTC().Format(backupTimeFormat)+".tar.gz")
}

// backup writes the archive preflight made (or, for a recovered job, a new one: nothing has
// changed before this step) under its final name, verified.
func (j *Job) backup(ctx context.Context) (string, error) {
	data, m := j.archive, j.manifest
	if data == nil {
		objects, err := j.readObjects(ctx)
		if err != nil {
			return "", err
		}
		if data, m, _, err = archive(ctx, j.rot.eng, j.c, objects); err != nil {
			return "", err
		}
	}
	file := backupName(j.rot.cfg.BackupDir, j.j.Container, j.j.Created)
	if err := writeBackup(file, "."+j.j.ID+".tar.gz.tmp", data, m, j.rot.cfg.Stall); err != nil {
		return "", err
	}
	j.set(func(jr *journal) { jr.Backup = file })
	return fmt.Sprintf("%s: %d entries written, read back and verified", file, len(m)), nil
}

// writeBackup writes an archive to a temporary dot-file beside file, fsyncs it, reads it back
// and compares every entry with want, and only then renames it to file: a partial or
// unverified archive never has a final name.
func writeBackup(file, tmpName string, data []byte, want manifest, hook func(string)) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	err := writeDurably(file, tmpName, data, func(tmp string) error {
		stall(hook, "backup")
		got, err := readBackup(tmp)
		if err == nil {
			err = sameManifest(want, got)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("backup %s: %w", file, err)
	}
	return nil
}

// checkFreeSpace refuses a backup directory with less free space than twice the tree: the
// backup, its temporary copy and the journals must fit with room to spare.
func checkFreeSpace(dir string, treeBytes int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("backup directory %s: %w", dir, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free/2 < treeBytes {
		return fmt.Errorf("backup directory %s has %d bytes free, less than twice the %d bytes of the certificate tree: free some space or give another --rotation.backup-dir", dir, free, treeBytes)
	}
	return nil
}

// archive reads the k3s certificate locations of the container's release, with the keys beside
// the certificates, into a gzipped tar in memory, and adds the objects of the cluster given (by
// entry name, under clusterEntries); it returns the entries and the bytes of the files. Entry
// names of files are the paths inside the container without the leading "/", so the archive
// restores onto "/".
func archive(ctx context.Context, eng rancher.Engine, c rancher.Container, objects map[string][]byte) ([]byte, manifest, int64, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	m := manifest{}
	var size int64
	err := rancher.Walk(ctx, eng, c.ID, rancher.Sources(c.Profile.K3sLocations(), true), func(src rancher.Source, r io.Reader) error {
		n, err := copyEntries(r, tw, strings.TrimPrefix(path.Dir(src.Path), "/"), m)
		size += n
		if err != nil {
			return fmt.Errorf("archive %s: %w", src.Path, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	if len(m) == 0 {
		return nil, nil, 0, errors.New("nothing to back up")
	}
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		data := objects[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			return nil, nil, 0, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, nil, 0, err
		}
		sum := sha256.Sum256(data)
		m[name] = hex.EncodeToString(sum[:])
	}
	if err := tw.Close(); err != nil {
		return nil, nil, 0, err
	}
	if err := gz.Close(); err != nil {
		return nil, nil, 0, err
	}
	return buf.Bytes(), m, size, nil
}

// treeOf parses the certificates of an archive.
func treeOf(data []byte) (tree, error) {
	t := tree{}
	err := eachEntry(bytes.NewReader(data), func(hdr *tar.Header, r io.Reader) error {
		if hdr.Typeflag != tar.TypeReg || strings.HasPrefix(hdr.Name, clusterEntries) {
			return nil
		}
		b, err := io.ReadAll(r)
		t.add("/"+hdr.Name, b)
		return err
	})
	return t, err
}

// treeOfBackup parses the certificates of a backup file.
func treeOfBackup(file string) (tree, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return treeOf(data)
}

// copyEntries rewrites each entry name under prefix and records its checksum.
func copyEntries(r io.Reader, tw *tar.Writer, prefix string, m manifest) (int64, error) {
	var size int64
	err := rancher.EachEntry(r, func(hdr *tar.Header, content io.Reader) error {
		if path.IsAbs(hdr.Name) || slices.Contains(strings.Split(hdr.Name, "/"), "..") {
			return fmt.Errorf("unsafe entry %q", hdr.Name)
		}
		hdr.Name = path.Join(prefix, hdr.Name)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = path.Join(prefix, hdr.Linkname)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(tw, h), content)
		size += n
		if err != nil {
			return err
		}
		m[hdr.Name] = ""
		if hdr.Typeflag == tar.TypeReg {
			m[hdr.Name] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	})
	return size, err
}

// readBackup reads a backup archive back from disk.
func readBackup(file string) (manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := manifest{}
	err = eachEntry(f, func(hdr *tar.Header, r io.Reader) error {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return err
		}
		m[hdr.Name] = ""
		if hdr.Typeflag == tar.TypeReg {
			m[hdr.Name] = hex.EncodeToString(h.Sum(nil))
		}
		return nil
	})
	return m, err
}

// readEntries reads the regular files of a backup, by entry name.
func readEntries(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]byte{}
	err = eachEntry(f, func(hdr *tar.Header, r io.Reader) error {
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		b, err := io.ReadAll(r)
		out[hdr.Name] = b
		return err
	})
	return out, err
}

// eachEntry reads a gzipped tar to its end, checksum included.
func eachEntry(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	if err := rancher.EachEntry(gz, fn); err != nil {
		return err
	}
	return gz.Close()
}

func sameManifest(want, got manifest) error {
	var diff []string
	for name, sum := range want {
		if g, ok := got[name]; !ok || g != sum {
			diff = append(diff, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diff = append(diff, name)
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		return fmt.Errorf("%d entries differ: %s", len(diff), strings.Join(diff, ", "))
	}
	return nil
}

// CheckBackupDir makes sure the backup directory can take backups before any rotation needs
// it: it exists or can be created (0700), a file can be written in it, and it says how much
// room it has.
func CheckBackupDir(dir string) (free int64, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return 0, fmt.Errorf("backup directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}
