package rotation

import "github.com/prometheus/client_golang/prometheus"

// Metrics count rotation outcomes; a nil *Metrics records nothing.
type Metrics struct {
	total      *prometheus.CounterVec
	last       *prometheus.GaugeVec
	inProgress *prometheus.GaugeVec
}

// NewMetrics registers the rotation metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_cert_exporter_rotations_total",
			Help: "Certificate rotations and restores run, by container, kind and result (dry runs not counted).",
		}, []string{"container", "kind", "result"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rancher_cert_exporter_rotation_last_timestamp_seconds",
			Help: "When the last rotation or restore of the container ended, by kind and result, as Unix seconds.",
		}, []string{"container", "kind", "result"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rancher_cert_exporter_rotation_in_progress",
			Help: "1 while a rotation or restore of the container runs.",
		}, []string{"container"}),
	}
	reg.MustRegister(m.total, m.last, m.inProgress)
	return m
}

func (m *Metrics) begin(container string) {
	if m != nil {
		m.inProgress.WithLabelValues(container).Set(1)
	}
}

func (m *Metrics) end(container, kind, state string, dryRun bool) {
	if m == nil {
		return
	}
	m.inProgress.WithLabelValues(container).Set(0)
	if dryRun {
		return
	}
	m.total.WithLabelValues(container, kind, state).Inc()
	m.last.WithLabelValues(container, kind, state).SetToCurrentTime()
}
