package collector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Config selects the sources. A nil Engine disables the Docker source.
type Config struct {
	Docker       DockerConfig
	Engine       rancher.Engine
	FilePatterns []string
	// FileRescanInterval is how often the host files are scanned whole besides inotify.
	FileRescanInterval time.Duration
}

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

// Collector reads the configured sources into snapshots. The /metrics handler, check and the
// status page all read the same snapshots.
type Collector struct {
	docker  *dockerSource
	files   *watchedFiles
	errs    *errorTracker
	trust   trustMemo
	sums    checksumWatch
	expo    exposition
	renders singleflight.Group // responses rendered for concurrent scrapes
}

// New builds the collector of the configured sources.
func New(cfg Config, logger *slog.Logger) *Collector {
	reasons := map[string][]string{}
	if cfg.Engine != nil {
		for _, s := range sources {
			if s.on(cfg.Docker) {
				reasons[s.name] = s.reasons
			}
		}
	}
	if len(cfg.FilePatterns) > 0 {
		reasons[model.SourceFile] = fileReasons
	}
	c := &Collector{errs: newErrorTracker(logger, reasons)}
	if cfg.Engine != nil {
		host := ""
		if h, ok := cfg.Engine.(interface{ DaemonHost() string }); ok {
			host = h.DaemonHost()
		}
		c.docker = newDockerSource(cfg.Docker, cfg.Engine, host, logger, c.errs)
		if eng, ok := cfg.Engine.(EventEngine); ok {
			c.docker.events = &eventWatch{d: c.docker, eng: eng, resync: c.docker.cfg.ResyncInterval, changed: make(chan struct{}, 1)}
		}
	}
	if len(cfg.FilePatterns) > 0 {
		c.files = newWatchedFiles(newFileSource(cfg.FilePatterns), cfg.FileRescanInterval, logger, c.errs)
	}
	return c
}

// Run follows the engine's events and reads the due sources in the background until ctx ends:
// scrapes and page views then make no engine call. Without it (check, the tests of the polling
// path) every gather inspects the containers and reads what is due itself.
func (c *Collector) Run(ctx context.Context) {
	if c.docker == nil || c.docker.events == nil {
		return
	}
	c.docker.events.started.Store(true)
	go c.docker.events.run(ctx)
	go c.docker.refresh(ctx)
}

// Gather returns the snapshot a scrape reports: every container as the events keep it (or, when
// they are not followed, inspected now), every source as its last read has it, read again where
// due, within ctx's deadline. A failing or slow source never stops the others.
func (c *Collector) Gather(ctx context.Context) model.Snapshot { return c.gather(ctx, false) }

// Current is the snapshot as it stands, without calling the engine (but for the very first
// inspection and reads): for the status page, automatic rotation and the rotation API.
func (c *Collector) Current(ctx context.Context) model.Snapshot { return c.gather(ctx, true) }

func (c *Collector) gather(ctx context.Context, current bool) model.Snapshot {
	var snap model.Snapshot
	var wg sync.WaitGroup
	var files model.SourceResult
	if c.files != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files = c.files.gather(ctx)
		}()
	}
	if c.docker != nil {
		r := c.docker.gather(ctx, current)
		snap.Containers, snap.Sources, snap.DockerUp, snap.TreeReads = r.containers, r.sources, &r.up, r.treeReads
		snap.Watching, snap.Looked = r.watching, c.docker.where()
		if c.docker.events.running() {
			following := c.docker.events.following()
			snap.EventsUp = &following
		}
	}
	wg.Wait()
	if c.files != nil {
		snap.Sources = append(snap.Sources, files)
	}
	snap.Taken = time.Now()
	snap.CACertsChanged = c.sums.observe(snap)
	snap.Conclude(c.trust.of)
	return snap
}

// Watched lists the Rancher containers the exporter watches (named, or discovered), as they
// stand.
func (c *Collector) Watched(ctx context.Context) []rancher.Container {
	return c.Current(ctx).Containers
}

// health is the per-scrape metrics of a snapshot: everything but the certificate series.
type health struct {
	snap  model.Snapshot
	errs  *errorTracker
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
	h.errs.counts.Collect(ch)
	ch <- prometheus.MustNewConstMetric(scrapeTime, prometheus.GaugeValue, time.Since(h.start).Seconds())
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
