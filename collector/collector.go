// Package collector fills the model: it follows the Docker engine's events and inspects the
// Rancher containers, reads each container's sources — plugins, one file each, listed in
// source.go — in the background on their own schedules and backoff, and the host files, and
// hands out snapshots (model.Snapshot) with every certificate's role and the verdicts
// concluded. Scrapes and page views read what it keeps.
package collector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// Collector reads the configured sources into snapshots. The /metrics handler, check and the
// status page all read the same snapshots.
type Collector struct {
	docker *dockerSource
	files  *watchedFiles
	errs   *errorTracker
	trust  trustMemo
	sums   checksumWatch
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

// ReadErrors are the counters of failed reads, by source and reason, for the exposition.
func (c *Collector) ReadErrors() prometheus.Collector { return c.errs.counts }
