package collector

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/sweepmap"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/printable"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// fileReasons are what a read of the host files can fail with (a scan that does not end in
// time included).
var fileReasons = readerr.Of(readerr.FileReads, []string{readerr.Timeout})

// fileSource reads certificate files on the host: files, directories (recursively) and globs.
type fileSource struct {
	patterns []string
	stats    sweepmap.Map[string, *statEntry] // by resolved path
}

// statEntry is a parsed file, reused while its size, mtime and inode stay the same.
type statEntry struct {
	size  int64
	mtime time.Time
	inode uint64
	cert  *certs.Info
	err   error
}

func newFileSource(patterns []string) *fileSource {
	return &fileSource{patterns: patterns}
}

// scan reads every file the patterns name (parsing only those whose size, mtime or inode
// changed) and returns the result and the directories it looked in.
func (s *fileSource) scan() (model.SourceResult, []string) {
	start := time.Now()
	sc := scan{res: model.SourceResult{Source: model.SourceFile, Up: true}, seen: map[string]bool{}}
	for _, p := range s.patterns {
		sc.pattern(p)
	}
	s.parseAll(&sc.res, sc.found)
	s.stats.Sweep()
	sc.res.Duration = time.Since(start)
	sc.res.ReadAt = time.Now()
	return sc.res, sc.dirs
}

// parseAll stats (and, when changed, parses) the files found, spread over the cores: on a
// warm scrape the time goes into one stat per file.
func (s *fileSource) parseAll(res *model.SourceResult, found []fileRef) {
	type result struct {
		cert *certs.Info
		err  error
	}
	results := make([]result, len(found))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(found); i += workers {
				results[i].cert, results[i].err = s.parse(found[i].file)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		path := found[i].path
		if err := certs.CheckName(path); err != nil {
			r.err = err
		}
		switch {
		case r.err != nil:
			res.Errors = append(res.Errors, model.FileError{Source: model.SourceFile, Path: printable.Escape(path), Err: r.err})
		case r.cert != nil:
			res.Certs = append(res.Certs, model.CertFile{Source: model.SourceFile, Path: path, Cert: r.cert, Class: rancher.Classification{Class: rancher.ClassHostFile}})
		}
	}
}

// scan finds the files the patterns name, once each, and the errors on the way.
type scan struct {
	res   model.SourceResult
	seen  map[string]bool // patterns may overlap; one series per file
	found []fileRef
	dirs  []string // where a change may change the result: to watch
}

// fileRef is a file to read: the path reported and the file it resolves to.
type fileRef struct{ path, file string }

func (sc *scan) fail(path string, err error) {
	sc.res.Errors = append(sc.res.Errors, model.FileError{Source: model.SourceFile, Path: printable.Escape(path), Err: err})
}

// pattern reads a glob, a directory or a file; one that names nothing downs the source.
func (sc *scan) pattern(p string) {
	if strings.ContainsAny(p, "*?[") {
		sc.glob(p)
		return
	}
	sc.dirs = append(sc.dirs, filepath.Dir(p)) // a file that appears, or is replaced by a rename
	info, err := os.Stat(p)
	switch {
	case err != nil:
		sc.res.Up = false
		sc.fail(p, statError(p, err))
	case info.IsDir():
		sc.dir(p)
	default:
		sc.add(p, p)
	}
}

func (sc *scan) glob(pattern string) {
	if dir := filepath.Dir(pattern); !strings.ContainsAny(dir, "*?[") {
		sc.dirs = append(sc.dirs, dir)
	}
	matches, err := filepath.Glob(pattern)
	if err == nil && len(matches) == 0 {
		err = errors.New("no file matches")
	}
	if err != nil {
		sc.res.Up = false
		sc.fail(pattern, readerr.Newf(readerr.NotFound, "%s: %v", pattern, err))
		return
	}
	for _, m := range matches {
		if info, err := os.Stat(m); err == nil && info.IsDir() {
			sc.dir(m)
		} else {
			sc.add(m, m)
		}
	}
}

// dir walks a directory for certificate files. Symlinks are followed only to files inside
// the directory; WalkDir itself never follows them, so there are no loops.
func (sc *scan) dir(dir string) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		sc.fail(dir, statError(dir, err))
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error { // every error is recorded as it comes
		if err != nil {
			sc.fail(p, statError(p, err))
			return nil
		}
		if d.IsDir() {
			sc.dirs = append(sc.dirs, p)
			return nil
		}
		if !certs.IsCandidate(p) {
			return nil
		}
		target := p
		if d.Type()&fs.ModeSymlink != 0 {
			if target, err = insideTarget(root, p); err != nil {
				sc.fail(p, err)
				return nil
			}
		}
		sc.add(p, target) // a named pipe or device is reported by parse, never opened
		return nil
	})
}

// insideTarget resolves a symlink and refuses targets outside root.
func insideTarget(root, link string) (string, error) {
	target, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", readerr.Newf(readerr.Symlink, "%s: %v", link, err)
	}
	if target != root && !strings.HasPrefix(target, root+string(filepath.Separator)) {
		return "", readerr.Newf(readerr.Symlink, "%s points to %s, outside %s", link, target, root)
	}
	return target, nil
}

// add records file (reported under path), once per path.
func (sc *scan) add(path, file string) {
	if !sc.seen[path] {
		sc.seen[path] = true
		sc.found = append(sc.found, fileRef{path: path, file: file})
	}
}

func (s *fileSource) parse(file string) (*certs.Info, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, statError(file, err)
	}
	if !info.Mode().IsRegular() {
		return nil, readerr.Newf(readerr.NotRegular, "%s is not a regular file (%s)", file, info.Mode().Type())
	}
	var inode uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		inode = st.Ino
	}
	e, ok := s.stats.Get(file)
	if !ok || e.size != info.Size() || !e.mtime.Equal(info.ModTime()) || e.inode != inode {
		e = &statEntry{size: info.Size(), mtime: info.ModTime(), inode: inode}
		e.cert, e.err = readCertFile(file, info.Size())
		if e.err != nil && readerr.ReasonOf(e.err) == readerr.Unreadable {
			return nil, e.err // a chmod does not change mtime: try again next time
		}
		s.stats.Put(file, e)
	}
	return e.cert, e.err
}

func readCertFile(file string, size int64) (*certs.Info, error) {
	if err := certs.CheckSize(file, size); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, statError(file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, certs.MaxFileSize+1))
	if err != nil {
		return nil, readerr.Newf(readerr.Unreadable, "%s: %v", file, err)
	}
	return certs.ParseInfo(file, data)
}

func statError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return readerr.Newf(readerr.NotFound, "%s: %v", path, err)
	}
	return readerr.Newf(readerr.Unreadable, "%s: %v", path, err)
}
