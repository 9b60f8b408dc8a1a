package collector

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/sweepmap"
)

// certMetrics keeps the two gauges of each certificate file between scrapes. The sources
// return the same *certs.Info while a file is unchanged, so a warm scrape builds no label
// pairs. Entries not used by a collect are dropped at its end.
type certMetrics struct {
	entries sweepmap.Map[certKey, *certEntry]
}

type certKey struct {
	cert                    *certs.Info
	container, source, path string
}

type certEntry struct {
	notAfter, notBefore gauge
}

// gauge is a constant gauge whose label pairs are shared with its sibling: with 10,000
// files, one set of label pairs per file instead of two saves a third of the heap.
type gauge struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
}

func (g gauge) Desc() *prometheus.Desc { return g.desc }

func (g gauge) Write(out *dto.Metric) error {
	out.Label = g.labels
	out.Gauge = &dto.Gauge{Value: &g.value}
	return nil
}

func (m *certMetrics) get(f CertFile) *certEntry {
	k := certKey{f.Cert, f.Container, f.Source, f.Path}
	e, ok := m.entries.Get(k)
	if !ok {
		// notAfter and notBefore have the same variable labels, so their pairs are the same.
		labels := prometheus.MakeLabelPairs(notAfter, []string{f.Container, f.Source, f.Path,
			f.Cert.SubjectCN, f.Cert.IssuerCN, f.Cert.Serial, strconv.FormatBool(f.Cert.IsCA)})
		e = &certEntry{
			notAfter:  gauge{notAfter, labels, float64(f.Cert.NotAfter.Unix())},
			notBefore: gauge{notBefore, labels, float64(f.Cert.NotBefore.Unix())},
		}
		m.entries.Put(k, e)
	}
	return e
}
