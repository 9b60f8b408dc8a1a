package rotation

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
)

// Metrics count rotation outcomes; a nil *Metrics records nothing.
type Metrics struct {
	total      *prometheus.CounterVec
	last       *prometheus.GaugeVec
	inProgress *prometheus.GaugeVec
}

// NewMetrics registers the rotation metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total:      metrics.Rotations.CounterVec(),
		last:       metrics.RotationLast.GaugeVec(),
		inProgress: metrics.RotationInProgress.GaugeVec(),
	}
	reg.MustRegister(m.total, m.last, m.inProgress)
	return m
}

// begin and end count jobs that may change a container; a dry run is none.
func (m *Metrics) begin(rep Report) {
	if m != nil && !rep.DryRun {
		m.inProgress.WithLabelValues(rep.Container, string(rep.Trigger)).Set(1)
	}
}

func (m *Metrics) end(rep Report) {
	if m == nil || rep.DryRun {
		return
	}
	m.inProgress.WithLabelValues(rep.Container, string(rep.Trigger)).Set(0)
	m.total.WithLabelValues(rep.Container, string(rep.Kind), string(rep.State), string(rep.Trigger)).Inc()
	m.setLast(rep)
}

func (m *Metrics) setLast(rep Report) {
	m.last.WithLabelValues(rep.Container, string(rep.Kind), string(rep.State), string(rep.Trigger)).Set(float64(rep.Finished.UnixNano()) / 1e9)
}

// LoadLastFromJournals sets the last-ended gauges from the journals of earlier processes, so
// that a failure stays visible (and alerting) across a restart of the exporter.
func (r *Rotator) LoadLastFromJournals() {
	if r.metrics == nil {
		return
	}
	all, _ := journals(r.cfg.BackupDir)
	seen := map[[4]string]bool{}
	for _, j := range all { // newest first
		key := [4]string{j.Container, string(j.Kind), string(j.State), string(j.Trigger)}
		if j.State == Running || j.DryRun || j.Finished.IsZero() || seen[key] {
			continue
		}
		seen[key] = true
		r.metrics.setLast(j.Report)
	}
}
