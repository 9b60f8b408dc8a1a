package collector

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// DefaultRescanInterval is how often the host files are scanned whole, whatever inotify says:
// the safety net, and the only way to see changes on file systems that do not notify.
const DefaultRescanInterval = 5 * time.Minute

// settleDelay gathers a burst of file events (an editor's write and rename, a tool writing a
// tree) into one scan.
const settleDelay = 100 * time.Millisecond

// watchedFiles keeps the result of the host files current without touching them per scrape:
// a scan when inotify reports a change in a directory it looked in, and every rescan interval.
type watchedFiles struct {
	src    *fileSource
	every  time.Duration
	notify bool // use inotify; without it only the rescans see changes
	logger *slog.Logger
	errs   *errorTracker

	start sync.Once
	ready chan struct{} // closed after the first scan

	mu      sync.Mutex
	result  model.SourceResult
	scans   int
	watched map[string]bool
}

func newWatchedFiles(src *fileSource, every time.Duration, logger *slog.Logger, errs *errorTracker) *watchedFiles {
	if every <= 0 {
		every = DefaultRescanInterval
	}
	return &watchedFiles{src: src, every: every, notify: true, logger: logger, errs: errs, ready: make(chan struct{}), watched: map[string]bool{}}
}

// gather returns the current result; the first call starts the watch and waits for the first
// scan, within the scrape's budget.
func (w *watchedFiles) gather(ctx context.Context) model.SourceResult {
	w.start.Do(func() { go w.run() })
	select {
	case <-w.ready:
	case <-ctx.Done():
		return model.SourceResult{Source: model.SourceFile, Errors: []model.FileError{{Source: model.SourceFile,
			Err: readerr.Newf(readerr.Timeout, "the first scan of the host files did not end within the scrape's budget")}}}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.result
}

func (w *watchedFiles) run() {
	var watcher *fsnotify.Watcher
	if w.notify {
		var err error
		if watcher, err = fsnotify.NewWatcher(); err != nil {
			w.logger.Warn("cannot watch host files; rescanning them every interval only", "interval", w.every, "err", err)
		}
	}
	w.rescan(watcher)
	close(w.ready)
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case ev := <-events:
			if relevant(ev) {
				settle.Reset(settleDelay)
			}
		case err := <-errs:
			w.logger.Warn("file watch", "err", err) // an overflow: the next scan repairs it
			settle.Reset(settleDelay)
		case <-settle.C:
			w.rescan(watcher)
		case <-tick.C:
			w.rescan(watcher)
		}
	}
}

// relevant tells whether an event may change the result: anything on a certificate file, and
// a directory or link appearing, going or moving.
func relevant(ev fsnotify.Event) bool {
	return certs.IsCandidate(ev.Name) || ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
}

// rescan scans the files, keeps the certificates of the last scan when none changed (so the
// cached exposition stays valid), and watches the directories the scan looked in.
func (w *watchedFiles) rescan(watcher *fsnotify.Watcher) {
	res, dirs := w.src.scan()
	w.errs.observe("", model.SourceFile, res.Errors)
	w.mu.Lock()
	if sameCerts(w.result.Certs, res.Certs) {
		res.Certs = w.result.Certs
	}
	w.result = res
	w.scans++
	w.mu.Unlock()
	if watcher != nil {
		w.watch(watcher, dirs)
	}
}

func (w *watchedFiles) watch(watcher *fsnotify.Watcher, dirs []string) {
	want := map[string]bool{}
	for _, d := range dirs {
		want[filepath.Clean(d)] = true
	}
	for d := range w.watched {
		if !want[d] {
			_ = watcher.Remove(d) // it may be gone already
			delete(w.watched, d)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(want)) {
		if w.watched[d] {
			continue
		}
		if err := watcher.Add(d); err != nil {
			continue // gone, or out of inotify watches: the rescan covers it
		}
		w.watched[d] = true
	}
}

// completedScans is how many scans ended.
func (w *watchedFiles) completedScans() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scans
}
