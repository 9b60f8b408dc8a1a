package rotation

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
)

// Metrics count rotation outcomes; a nil *Metrics records nothing.
type Metrics struct {
	total      *prometheus.CounterVec
	last       *prometheus.GaugeVec
	secretLast *prometheus.GaugeVec
	inProgress *prometheus.GaugeVec
}

// NewMetrics registers the rotation metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total:      metrics.Rotations.CounterVec(),
		last:       metrics.RotationLast.GaugeVec(),
		secretLast: metrics.RotationSecretLast.GaugeVec(),
		inProgress: metrics.RotationInProgress.GaugeVec(),
	}
	reg.MustRegister(m.total, m.last, m.secretLast, m.inProgress)
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
	ended := float64(rep.Finished.UnixNano()) / 1e9
	m.last.WithLabelValues(rep.Container, string(rep.Kind), string(rep.State), string(rep.Trigger)).Set(ended)
	for _, key := range rep.DeleteSecrets {
		m.secretLast.WithLabelValues(rep.Container, key, string(rep.State)).Set(ended)
	}
}

// LoadLastFromJournals sets the last-ended gauges from the journals of earlier processes, so
// that a failure stays visible (and alerting) across a restart of the exporter.
func (r *Rotator) LoadLastFromJournals() {
	if r.metrics == nil {
		return
	}
	all, _ := journals(r.cfg.BackupDir)
	for _, j := range slices.Backward(all) { // oldest first: the newest of each series is set last
		if j.State != Running && !j.DryRun && !j.Finished.IsZero() {
			r.metrics.setLast(j.Report)
		}
	}
}
