package collector

import (
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// errorTracker counts read errors by reason and logs each failing file once when its failure
// starts and once when it ends, not on every scrape.
type errorTracker struct {
	logger *slog.Logger
	counts *prometheus.CounterVec

	mu     sync.Mutex
	active map[string]map[string]model.FileError // container/source → path+reason → error
}

// newErrorTracker starts the counters of each source at 0 for the reasons it can fail with.
func newErrorTracker(logger *slog.Logger, reasons map[string][]string) *errorTracker {
	counts := metrics.ReadErrors.CounterVec()
	for s, rs := range reasons {
		for _, r := range rs {
			counts.WithLabelValues(s, r)
		}
	}
	return &errorTracker{logger: logger, counts: counts, active: map[string]map[string]model.FileError{}}
}

// observe records the errors of one read of a container's source ("" for the host files).
func (t *errorTracker) observe(container, source string, errs []model.FileError) {
	scope := container + "/" + source
	now := map[string]model.FileError{}
	for _, e := range errs {
		t.count(e.Source, e.Err)
		now[e.Path+"\x00"+readerr.ReasonOf(e.Err)] = e
	}
	t.mu.Lock()
	before := t.active[scope]
	t.active[scope] = now
	t.mu.Unlock()
	for k, e := range now {
		if _, ok := before[k]; !ok {
			t.logger.Warn("certificate read failing", "source", e.Source, "container", e.Container,
				"path", e.Path, "reason", readerr.ReasonOf(e.Err), "err", e.Err)
		}
	}
	for k, e := range before {
		if _, ok := now[k]; !ok {
			t.logger.Info("certificate read recovered", "source", e.Source, "container", e.Container,
				"path", e.Path, "reason", readerr.ReasonOf(e.Err))
		}
	}
}

// count counts one failed read without logging it.
func (t *errorTracker) count(source string, err error) {
	t.counts.WithLabelValues(source, readerr.ReasonOf(err)).Inc()
}
