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
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// fileSource reads certificate files on the host: files, directories (recursively) and globs.
type fileSource struct {
	patterns []string

	pending []fileRef                        // found by the current gather; gathers never overlap (singleflight)
	stats   sweepmap.Map[string, *statEntry] // by resolved path
}

// fileRef is a file to read: the path reported and the file it resolves to.
type fileRef struct{ path, file string }

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

func (s *fileSource) gather() SourceResult {
	start := time.Now()
	res := SourceResult{Source: SourceFile, Up: true}
	seen := map[string]bool{} // patterns may overlap; one series per file
	for _, p := range s.patterns {
		if strings.ContainsAny(p, "*?[") {
			s.readGlob(&res, p, seen)
			continue
		}
		info, err := os.Stat(p)
		switch {
		case err != nil:
			res.Up = false
			res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: p, Err: statError(p, err)})
		case info.IsDir():
			s.readDir(&res, p, seen)
		default:
			s.addFile(p, p, seen)
		}
	}
	s.parseAll(&res)
	s.stats.Sweep()
	res.Duration = time.Since(start)
	return res
}

// parseAll stats (and, when changed, parses) the files found, spread over the cores: on a
// warm scrape the time goes into one stat per file.
func (s *fileSource) parseAll(res *SourceResult) {
	type result struct {
		cert *certs.Info
		err  error
	}
	results := make([]result, len(s.pending))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(s.pending); i += workers {
				results[i].cert, results[i].err = s.parse(s.pending[i].file)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		path := s.pending[i].path
		switch {
		case r.err != nil:
			res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: path, Err: r.err})
		case r.cert != nil:
			res.Certs = append(res.Certs, CertFile{Source: SourceFile, Path: path, Cert: r.cert})
		}
	}
	s.pending = s.pending[:0]
}

func (s *fileSource) readGlob(res *SourceResult, pattern string, seen map[string]bool) {
	matches, err := filepath.Glob(pattern)
	if err == nil && len(matches) == 0 {
		err = errors.New("no file matches")
	}
	if err != nil {
		res.Up = false
		res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: pattern, Err: readerr.Newf(readerr.NotFound, "%s: %v", pattern, err)})
		return
	}
	for _, m := range matches {
		if info, err := os.Stat(m); err == nil && info.IsDir() {
			s.readDir(res, m, seen)
		} else {
			s.addFile(m, m, seen)
		}
	}
}

// readDir walks a directory for certificate files. Symlinks are followed only to files
// inside the directory; WalkDir itself never follows them, so there are no loops.
func (s *fileSource) readDir(res *SourceResult, dir string, seen map[string]bool) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: dir, Err: statError(dir, err)})
		return
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: p, Err: statError(p, err)})
			return nil
		}
		if d.IsDir() || !certs.IsCandidate(p) {
			return nil
		}
		target := p
		if d.Type()&fs.ModeSymlink != 0 {
			if target, err = insideTarget(root, p); err != nil {
				res.Errors = append(res.Errors, FileError{Source: SourceFile, Path: p, Err: err})
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		s.addFile(p, target, seen)
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

// addFile queues file (reported under path) for parseAll, once per path.
func (s *fileSource) addFile(path, file string, seen map[string]bool) {
	if seen[path] {
		return
	}
	seen[path] = true
	s.pending = append(s.pending, fileRef{path: path, file: file})
}

func (s *fileSource) parse(file string) (*certs.Info, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, statError(file, err)
	}
	if !info.Mode().IsRegular() {
		return nil, readerr.Newf(readerr.Unreadable, "%s is not a regular file", file)
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
	if size > certs.MaxFileSize {
		return nil, readerr.Newf(readerr.TooLarge, "%s is %d bytes, over %d", file, size, certs.MaxFileSize)
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
