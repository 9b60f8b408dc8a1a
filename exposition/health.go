package exposition

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
)

// The descriptions of the per-scrape metrics (metrics names them all).
var (
	notAfter     = metrics.CertNotAfter.Desc()
	sourceUp     = metrics.SourceUp.Desc()
	sourceTime   = metrics.SourceDuration.Desc()
	snapshotAge  = metrics.SnapshotAge.Desc()
	treeReads    = metrics.TreeReads.Desc()
	scrapeTime   = metrics.ScrapeDuration.Desc()
	dockerUp     = metrics.DockerUp.Desc()
	watching     = metrics.Containers.Desc()
	restarts     = metrics.ContainerRestarts.Desc()
	stateDesc    = metrics.ContainerState.Desc()
	rancherInfo  = metrics.RancherInfo.Desc()
	window       = metrics.RenewalWindow.Desc()
	unused       = metrics.CertificateUnused.Desc()
	ownerWindow  = metrics.OwnerRenewalWindow.Desc()
	cacertsInfo  = metrics.CACertsInfo.Desc()
	chainTrusted = metrics.UIChainTrusted.Desc()
	anchorDesc   = metrics.CACertsAnchor.Desc()
	servingWin   = metrics.ServingWindow.Desc()
	eventsUp     = metrics.EngineEventsUp.Desc()
	namesCovered = metrics.NamesCovered.Desc()
	nameMissing  = metrics.NameMissing.Desc()
	dsConnected  = metrics.DownstreamConnected.Desc()
	dsInfo       = metrics.DownstreamInfo.Desc()
	rke1Clusters = metrics.RKE1Clusters.Desc()
	// stateValues are the states container_state has a series for.
	stateValues = []container.ContainerState{container.StateCreated, container.StateRunning, container.StatePaused,
		container.StateRestarting, container.StateRemoving, container.StateExited, container.StateDead}
)

// health is the per-scrape metrics of a snapshot: everything but the certificate series.
type health struct {
	snap  model.Snapshot
	errs  prometheus.Collector // the read-error counters
	start time.Time
}

// Describe describes nothing: health is registered for one scrape as an unchecked collector.
func (h health) Describe(chan<- *prometheus.Desc) {}

func (h health) Collect(ch chan<- prometheus.Metric) {
	for _, s := range h.snap.Sources {
		ch <- prometheus.MustNewConstMetric(sourceUp, prometheus.GaugeValue, boolValue(s.Up), s.Container, s.Source)
		ch <- prometheus.MustNewConstMetric(sourceTime, prometheus.GaugeValue, s.Duration.Seconds(), s.Container, s.Source)
		if !s.ReadAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(snapshotAge, prometheus.GaugeValue, h.snap.Taken.Sub(s.ReadAt).Seconds(), s.Container, s.Source)
		}
	}
	for _, s := range h.snap.Sources {
		if s.Source != model.SourceDownstream || s.Clusters == nil {
			continue
		}
		rke1 := 0
		for _, d := range s.Clusters {
			ch <- prometheus.MustNewConstMetric(dsConnected, prometheus.GaugeValue, boolValue(d.Connected), s.Container, d.ID)
			ch <- prometheus.MustNewConstMetric(dsInfo, prometheus.GaugeValue, 1, s.Container, d.ID, d.DisplayName, d.Driver, d.Provider, d.KubernetesVersion)
			if d.RKE1 {
				rke1++
			}
		}
		ch <- prometheus.MustNewConstMetric(rke1Clusters, prometheus.GaugeValue, float64(rke1), s.Container)
	}
	for _, s := range h.snap.Sources {
		for _, cf := range s.Certs {
			if cf.Class.Class.Unused() {
				ch <- prometheus.MustNewConstMetric(unused, prometheus.GaugeValue, 1, cf.Container, cf.Source, cf.Path)
			}
			if cf.Class.RenewWithin > 0 {
				ch <- prometheus.MustNewConstMetric(ownerWindow, prometheus.GaugeValue, cf.Class.RenewWithin.Seconds(), cf.Container, cf.Source, cf.Path)
			}
		}
	}
	for name, n := range h.snap.TreeReads {
		ch <- prometheus.MustNewConstMetric(treeReads, prometheus.CounterValue, float64(n), name)
	}
	for _, ct := range h.snap.Containers {
		ch <- prometheus.MustNewConstMetric(restarts, prometheus.GaugeValue, float64(ct.RestartCount), ct.Name)
		for _, st := range stateValues {
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, boolValue(ct.State == st), ct.Name, string(st))
		}
		p := ct.Profile
		ch <- prometheus.MustNewConstMetric(rancherInfo, prometheus.GaugeValue, 1, ct.Name, p.Rancher, p.K3s, string(p.Renewal))
		if t, ok := h.snap.Trust(ct.Name); ok {
			ch <- prometheus.MustNewConstMetric(cacertsInfo, prometheus.GaugeValue, 1, ct.Name, t.Checksum, t.AgentTLSMode)
			if t.Checked {
				ch <- prometheus.MustNewConstMetric(chainTrusted, prometheus.GaugeValue, boolValue(t.Trusted), ct.Name)
			}
			if t.AnchorKnown {
				for _, s := range h.snap.Sources {
					if s.Container != ct.Name || s.Source != model.SourceSetting {
						continue
					}
					for _, cf := range s.Certs {
						ch <- prometheus.MustNewConstMetric(anchorDesc, prometheus.GaugeValue, boolValue(cf.Path == t.Anchor), ct.Name, cf.Path)
					}
				}
			}
		}
		for _, n := range h.snap.Names(ct.Name) {
			ch <- prometheus.MustNewConstMetric(namesCovered, prometheus.GaugeValue, boolValue(n.Covered()), ct.Name, n.Source, n.Path)
			for _, m := range n.Missing {
				ch <- prometheus.MustNewConstMetric(nameMissing, prometheus.GaugeValue, 1, ct.Name, n.Source, n.Path, m.Name)
			}
		}
		ch <- prometheus.MustNewConstMetric(window, prometheus.GaugeValue, p.Window.Seconds(), ct.Name)
		ch <- prometheus.MustNewConstMetric(servingWin, prometheus.GaugeValue, p.ServingWindow.Seconds(), ct.Name)
	}
	if h.snap.DockerUp != nil {
		ch <- prometheus.MustNewConstMetric(dockerUp, prometheus.GaugeValue, boolValue(*h.snap.DockerUp))
		ch <- prometheus.MustNewConstMetric(watching, prometheus.GaugeValue, float64(h.snap.Watching))
	}
	if h.snap.EventsUp != nil {
		ch <- prometheus.MustNewConstMetric(eventsUp, prometheus.GaugeValue, boolValue(*h.snap.EventsUp))
	}
	h.errs.Collect(ch)
	ch <- prometheus.MustNewConstMetric(scrapeTime, prometheus.GaugeValue, time.Since(h.start).Seconds())
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
