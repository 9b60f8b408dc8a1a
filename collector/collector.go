package collector

import (
	"context"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

const namespace = "rancher_cert_exporter"

// gatherTimeout bounds one gather; Prometheus' default scrape timeout is 10s.
const gatherTimeout = 9 * time.Second

// Config selects the sources. A nil Docker client disables the Docker source.
type Config struct {
	Docker       DockerConfig
	Client       *client.Client
	FilePatterns []string
}

var (
	certLabels  = []string{"container", "source", "path", "subject_cn", "issuer_cn", "serial_number", "ca"}
	notAfter    = prometheus.NewDesc("cert_not_after_seconds", "NotAfter of the first certificate in the file, as Unix seconds.", certLabels, nil)
	notBefore   = prometheus.NewDesc("cert_not_before_seconds", "NotBefore of the first certificate in the file, as Unix seconds.", certLabels, nil)
	sourceUp    = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "source_up"), "Whether the last read of the source succeeded.", []string{"container", "source"}, nil)
	sourceTime  = prometheus.NewDesc(prometheus.BuildFQName(namespace, "source", "duration_seconds"), "How long the last read of the source took.", []string{"container", "source"}, nil)
	scrapeTime  = prometheus.NewDesc(prometheus.BuildFQName(namespace, "scrape", "duration_seconds"), "How long the whole gather took.", nil, nil)
	dockerUp    = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "docker_up"), "Whether the Docker engine answered the last listing.", nil, nil)
	restarts    = prometheus.NewDesc(prometheus.BuildFQName(namespace, "container", "restart_count"), "Restarts of the Rancher container by its restart policy, as docker inspect reports.", []string{"container"}, nil)
	stateDesc   = prometheus.NewDesc(prometheus.BuildFQName(namespace, "container", "state"), "1 for the current state of the Rancher container, 0 for the others.", []string{"container", "state"}, nil)
	rancherInfo = prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "rancher_info"), "The Rancher and k3s versions the container reports (\"\" when unknown) and what a start does to its k3s certificates: renewal never, on-start or unknown.", []string{"container", "rancher_version", "k3s_version", "renewal"}, nil)
	window      = prometheus.NewDesc(prometheus.BuildFQName(namespace, "k3s", "renewal_window_seconds"), "How long before expiry a start of the container renews its k3s leaf certificates; 0 when it never does or the version is unknown.", []string{"container"}, nil)
	servingWin  = prometheus.NewDesc(prometheus.BuildFQName(namespace, "k3s", "serving_renewal_window_seconds"), "The same for the 6443 serving certificate (dynamic-cert.json); 0 where k3s reloads it from its secret instead (before v1.19).", []string{"container"}, nil)
	stateValues = []container.ContainerState{container.StateCreated, container.StateRunning, container.StatePaused,
		container.StateRestarting, container.StateRemoving, container.StateExited, container.StateDead}
)

// Collector is the Prometheus collector of all configured sources.
type Collector struct {
	docker    *dockerSource
	files     *fileSource
	errs      *errorTracker
	fileReads singleflight.Group

	collectMu sync.Mutex
	metrics   certMetrics
}

// New builds the collector of the configured sources.
func New(cfg Config, logger log.Logger) *Collector {
	var sources []string
	if cfg.Client != nil {
		sources = append(sources, SourceK3s, SourceUI)
		if cfg.Docker.Secrets {
			sources = append(sources, SourceSecret)
		}
	}
	if len(cfg.FilePatterns) > 0 {
		sources = append(sources, SourceFile)
	}
	c := &Collector{errs: newErrorTracker(logger, sources)}
	if cfg.Client != nil {
		c.docker = newDockerSource(cfg.Docker, cfg.Client, logger, c.errs)
	}
	if len(cfg.FilePatterns) > 0 {
		c.files = newFileSource(cfg.FilePatterns)
	}
	return c
}

// Gather reads every source once; a failing source never stops the others.
func (c *Collector) Gather(ctx context.Context) Snapshot {
	var snap Snapshot
	var wg sync.WaitGroup
	var fileRes *SourceResult
	if c.files != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, _ := c.fileReads.Do("files", func() (any, error) {
				r := c.files.gather()
				c.errs.observe("files", r.Errors)
				return r, nil
			})
			r := v.(SourceResult)
			fileRes = &r
		}()
	}
	if c.docker != nil {
		containers, results, up := c.docker.gather(ctx)
		snap.Containers, snap.Sources, snap.DockerUp = containers, results, &up
	}
	wg.Wait()
	if fileRes != nil {
		snap.Sources = append(snap.Sources, *fileRes)
	}
	return snap
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notAfter, notBefore, sourceUp, sourceTime, scrapeTime, dockerUp, restarts, stateDesc, rancherInfo, window, servingWin} {
		ch <- d
	}
	c.errs.counts.Describe(ch)
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), gatherTimeout)
	defer cancel()
	snap := c.Gather(ctx)

	c.collectMu.Lock() // concurrent collects would sweep each other's entries
	for _, f := range snap.Certs() {
		m := c.metrics.get(f)
		ch <- m.notAfter
		ch <- m.notBefore
	}
	c.metrics.entries.Sweep()
	c.collectMu.Unlock()
	for _, s := range snap.Sources {
		ch <- prometheus.MustNewConstMetric(sourceUp, prometheus.GaugeValue, boolValue(s.Up), s.Container, s.Source)
		ch <- prometheus.MustNewConstMetric(sourceTime, prometheus.GaugeValue, s.Duration.Seconds(), s.Container, s.Source)
	}
	for _, ct := range snap.Containers {
		ch <- prometheus.MustNewConstMetric(restarts, prometheus.GaugeValue, float64(ct.RestartCount), ct.Name)
		for _, st := range stateValues {
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, boolValue(ct.State == st), ct.Name, string(st))
		}
		p := ct.Profile
		ch <- prometheus.MustNewConstMetric(rancherInfo, prometheus.GaugeValue, 1, ct.Name, p.Rancher, p.K3s, string(p.Renewal))
		ch <- prometheus.MustNewConstMetric(window, prometheus.GaugeValue, p.Window.Seconds(), ct.Name)
		ch <- prometheus.MustNewConstMetric(servingWin, prometheus.GaugeValue, p.ServingWindow.Seconds(), ct.Name)
	}
	if snap.DockerUp != nil {
		ch <- prometheus.MustNewConstMetric(dockerUp, prometheus.GaugeValue, boolValue(*snap.DockerUp))
	}
	c.errs.counts.Collect(ch) // after the gather, so this scrape's errors are counted
	ch <- prometheus.MustNewConstMetric(scrapeTime, prometheus.GaugeValue, time.Since(start).Seconds())
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
