package rotation

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// manifest is the content of a backup: entry name to sha256 of its bytes ("" for
// directories and links).
type manifest map[string]string

// writeBackup archives the k3s certificate directories of a container into a new .tar.gz
// in dir, fsyncs it and reads it back to verify every entry before returning. Entry names are
// the paths inside the container without the leading "/", so the archive restores onto "/".
func writeBackup(ctx context.Context, cli *client.Client, c rancher.Container, dir string, now time.Time) (string, manifest, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("backup directory: %w", err)
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.tar.gz", c.Name, now.UTC().Format("20060102T150405.000Z")))
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("create backup: %w", err)
	}
	written, err := archiveTree(ctx, cli, c, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(file)
		return "", nil, fmt.Errorf("write backup %s: %w", file, err)
	}
	read, err := readBackup(file)
	if err != nil {
		return file, nil, fmt.Errorf("verify backup %s: %w", file, err)
	}
	if err := sameManifest(written, read); err != nil {
		return file, nil, fmt.Errorf("verify backup %s: %w", file, err)
	}
	return file, written, nil
}

// archiveTree streams the k3s certificate locations of the container's release, with the keys
// beside the certificates, into a gzipped tar and returns what it wrote.
func archiveTree(ctx context.Context, cli *client.Client, c rancher.Container, w io.Writer) (manifest, error) {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	m := manifest{}
	err := rancher.Walk(ctx, cli, c.ID, rancher.Sources(c.Profile.K3sLocations(), true), func(src rancher.Source, r io.Reader) error {
		if err := copyEntries(tar.NewReader(r), tw, strings.TrimPrefix(path.Dir(src.Path), "/"), m); err != nil {
			return fmt.Errorf("archive %s: %w", src.Path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errors.New("nothing to back up")
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return m, gz.Close()
}

// copyEntries rewrites each entry name under prefix and records its checksum.
func copyEntries(tr *tar.Reader, tw *tar.Writer, prefix string, m manifest) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
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
		if _, err := io.Copy(io.MultiWriter(tw, h), tr); err != nil {
			return err
		}
		m[hdr.Name] = ""
		if hdr.Typeflag == tar.TypeReg {
			m[hdr.Name] = hex.EncodeToString(h.Sum(nil))
		}
	}
}

// readBackup reads a backup archive back from disk.
func readBackup(file string) (manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	m := manifest{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return nil, err
		}
		m[hdr.Name] = ""
		if hdr.Typeflag == tar.TypeReg {
			m[hdr.Name] = hex.EncodeToString(h.Sum(nil))
		}
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return m, nil
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
