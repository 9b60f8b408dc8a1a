package rancher

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
	"sync/atomic"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// File is one certificate file of a tree: its absolute path and content, or why it could not
// be read.
type File struct {
	Path string
	Data []byte
	Err  error
}

// maxLinkHops bounds symlink resolution, as the kernel's MAXSYMLINKS does.
const maxLinkHops = 40

type tarEntry struct {
	typ    byte
	data   []byte
	link   string
	tooBig int64
}

// Bounds of one tree read: what it may hold in memory of certificate files, whatever the
// container keeps (k3s writes about 40 files of a few kilobytes).
const (
	MaxTreeBytes = 16 << 20
	MaxTreeFiles = 2000
)

// treeBudget counts what a tree read has taken, across its concurrent archive reads.
type treeBudget struct {
	bytes, files atomic.Int64
}

// take accounts for one more file of size bytes, refusing it beyond the bounds.
func (b *treeBudget) take(dir string, size int64) error {
	if b == nil {
		return nil
	}
	if n := b.files.Add(1); n > MaxTreeFiles {
		return readerr.Newf(readerr.TooLarge, "more than %d certificate files (at %s): not read", MaxTreeFiles, dir)
	}
	if n := b.bytes.Add(size); n > MaxTreeBytes {
		return readerr.Newf(readerr.TooLarge, "more than %d MiB of certificate files (at %s): not read", MaxTreeBytes>>20, dir)
	}
	return nil
}

// ReadArchive reads a tar stream of dir, as the Docker archive endpoint returns it (entry
// names start with the base name of dir), and returns its certificate files. Links are
// resolved inside the archive only: nothing outside dir is ever read.
func ReadArchive(r io.Reader, dir string) ([]File, error) {
	return readArchive(r, dir, nil)
}

// readArchive is ReadArchive within a tree read's budget.
func readArchive(r io.Reader, dir string, budget *treeBudget) ([]File, error) {
	entries := map[string]*tarEntry{}
	var order []string
	var unsafe []File
	var failed error // the budget's, or a content that could not be read: as it is
	err := EachEntry(r, func(hdr *tar.Header, content io.Reader) error {
		name, ok := entryPath(dir, hdr.Name)
		if !ok {
			unsafe = append(unsafe, File{Path: dir,
				Err: readerr.Newf(readerr.UnsafePath, "archive of %s has entry %q outside it", dir, hdr.Name)})
			return nil
		}
		e := &tarEntry{typ: hdr.Typeflag, link: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg:
			if !certs.IsCandidate(name) {
				return nil
			}
			if certs.CheckSize(name, hdr.Size) != nil {
				e.tooBig = hdr.Size
				break
			}
			if failed = budget.take(dir, hdr.Size); failed != nil {
				return failed
			}
			var err error
			if e.data, err = io.ReadAll(content); err != nil {
				failed = readerr.Newf(readerr.Unreadable, "archive of %s: %s: %v", dir, name, err)
				return failed
			}
		case tar.TypeSymlink, tar.TypeLink:
		case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
			if !certs.IsCandidate(name) {
				return nil
			}
		default:
			return nil
		}
		entries[name] = e
		order = append(order, name)
		return nil
	})
	switch {
	case failed != nil:
		return nil, failed
	case err != nil:
		return nil, readerr.Newf(readerr.Unreadable, "archive of %s: %v", dir, err)
	}

	files := unsafe
	for _, name := range order {
		if !certs.IsCandidate(name) {
			continue
		}
		files = append(files, resolve(dir, name, entries))
	}
	return files, nil
}

// entryPath maps an archive entry name to its absolute path under dir, refusing names that
// climb out of it.
func entryPath(dir, name string) (string, bool) {
	if strings.HasPrefix(name, "/") {
		return "", false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", false
		}
	}
	first, rest, _ := strings.Cut(path.Clean(name), "/")
	if first != path.Base(dir) {
		return "", false
	}
	return path.Join(dir, rest), true
}

func resolve(dir, name string, entries map[string]*tarEntry) File {
	cur := name
	for hop := 0; hop <= maxLinkHops; hop++ {
		e, ok := entries[cur]
		if !ok {
			return File{Path: name, Err: readerr.Newf(readerr.Symlink, "%s: link target %s is not a certificate file in %s", name, cur, dir)}
		}
		switch e.typ {
		case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
			return File{Path: name, Err: readerr.Newf(readerr.NotRegular, "%s is a %s, not a regular file", name, typeName(e.typ))}
		case tar.TypeReg:
			if e.tooBig > 0 {
				return File{Path: name, Err: certs.CheckSize(name, e.tooBig)}
			}
			return File{Path: name, Data: e.data}
		case tar.TypeLink:
			target, ok := entryPath(dir, e.link)
			if !ok {
				return File{Path: name, Err: readerr.Newf(readerr.UnsafePath, "%s: hard link to %q outside %s", name, e.link, dir)}
			}
			cur = target
		case tar.TypeSymlink:
			target := e.link
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(cur), target)
			}
			target = path.Clean(target)
			if target != dir && !strings.HasPrefix(target, dir+"/") {
				return File{Path: name, Err: readerr.Newf(readerr.Symlink, "%s: link to %s leaves %s", name, e.link, dir)}
			}
			cur = target
		}
	}
	return File{Path: name, Err: readerr.New(readerr.Symlink, fmt.Errorf("%s: too many levels of symbolic links", name))}
}

func typeName(typ byte) string {
	switch typ {
	case tar.TypeFifo:
		return "named pipe"
	case tar.TypeChar:
		return "character device"
	}
	return "block device"
}
