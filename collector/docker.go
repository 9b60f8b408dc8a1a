package collector

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/sweepmap"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// DockerConfig selects the Rancher containers to read.
type DockerConfig struct {
	Containers []string // names or IDs; when given, only these
	Discover   bool     // find containers of rancher/rancher images
	UIURL      string   // probe this URL for the UI instead of the published port
	Secrets    bool     // read the certificates of each container's cluster secrets
}

// dockerSource reads the k3s tree and the UI certificate of each Rancher container.
type dockerSource struct {
	cfg    DockerConfig
	cli    *client.Client
	logger log.Logger
	errs   *errorTracker
	reads  singleflight.Group

	caches sweepmap.Map[string, *certs.Cache] // by container ID

	mu      sync.Mutex
	known   []string // container names of the last successful listing
	downErr string   // the reason the engine is failing with, for start/end logs
}

// containerRead is the outcome of one shared read of one container.
type containerRead struct {
	container rancher.Container
	sources   []SourceResult
}

func newDockerSource(cfg DockerConfig, cli *client.Client, logger log.Logger, errs *errorTracker) *dockerSource {
	return &dockerSource{cfg: cfg, cli: cli, logger: logger, errs: errs}
}

// gather reads every selected container concurrently. When the engine cannot be reached,
// each container known from the last listing is reported down.
func (d *dockerSource) gather(ctx context.Context) ([]rancher.Container, []SourceResult, bool) {
	targets, err := d.targets(ctx)
	d.trackEngine(err)
	if err != nil {
		d.errs.count(SourceK3s, err) // logged by trackEngine
		names := d.knownNames()
		if len(names) == 0 {
			names = []string{""}
		}
		var results []SourceResult
		for _, name := range names {
			results = append(results, SourceResult{Container: name, Source: SourceK3s,
				Errors: []FileError{{Container: name, Source: SourceK3s, Path: d.cli.DaemonHost(), Err: err}}})
		}
		return nil, results, false
	}

	// --rancher.url names one UI; with several containers it cannot say whose it is.
	urlConflict := d.cfg.UIURL != "" && len(targets) > 1
	reads := make([]containerRead, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, _ := d.reads.Do(target, func() (any, error) { return d.read(ctx, target, urlConflict), nil })
			reads[i] = v.(containerRead)
		}()
	}
	wg.Wait()

	var containers []rancher.Container
	var results []SourceResult
	var names []string
	seen := map[string]bool{}
	for _, r := range reads {
		if seen[r.container.ID] {
			continue // the same container named twice (name and ID)
		}
		if r.container.ID != "" {
			containers = append(containers, r.container)
			seen[r.container.ID] = true
		}
		names = append(names, r.sources[0].Container)
		results = append(results, r.sources...)
	}
	d.caches.Sweep() // containers that are gone lose their cache
	sort.Strings(names)
	d.mu.Lock()
	d.known = names
	d.mu.Unlock()
	return containers, results, !engineUnreachable(results)
}

func (d *dockerSource) targets(ctx context.Context) ([]string, error) {
	if len(d.cfg.Containers) > 0 || !d.cfg.Discover {
		return d.cfg.Containers, nil
	}
	return rancher.Discover(ctx, d.cli)
}

// read inspects one container and reads its k3s tree and, while it runs, its UI.
func (d *dockerSource) read(ctx context.Context, target string, urlConflict bool) containerRead {
	start := time.Now()
	c, err := rancher.Inspect(ctx, d.cli, target)
	if err != nil {
		res := SourceResult{Container: target, Source: SourceK3s, Duration: time.Since(start),
			Errors: []FileError{{Container: target, Source: SourceK3s, Path: target, Err: err}}}
		d.errs.observe(target+"/k3s", res.Errors)
		return containerRead{sources: []SourceResult{res}}
	}
	k3s := d.readK3s(ctx, c, start)
	out := containerRead{container: c, sources: []SourceResult{k3s}}
	if c.State == container.StateRunning || d.cfg.UIURL != "" {
		out.sources = append(out.sources, d.readUI(ctx, c, urlConflict))
	}
	if d.cfg.Secrets {
		out.sources = append(out.sources, d.readSecrets(ctx, c))
	}
	return out
}

func (d *dockerSource) readK3s(ctx context.Context, c rancher.Container, start time.Time) SourceResult {
	res := SourceResult{Container: c.Name, Source: SourceK3s}
	files, err := rancher.ReadTree(ctx, d.cli, c.ID, c.Profile.Locations)
	if err != nil {
		res.Errors = []FileError{{Container: c.Name, Source: SourceK3s, Path: rancher.ServerTLSDir, Err: err}}
	} else {
		res.Up = true
		cache := d.cache(c.ID)
		for _, f := range files {
			addFile(&res, cache, f)
		}
		cache.Sweep()
	}
	res.Duration = time.Since(start)
	d.errs.observe(c.Name+"/k3s", res.Errors)
	return res
}

// addFile parses one file of a tree into the result: a certificate, an error, or nothing
// (a file with PEM blocks but no certificate, such as a key).
func addFile(res *SourceResult, cache *certs.Cache, f rancher.File) {
	err := f.Err
	var cert *certs.Info
	if err == nil {
		cert, err = cache.Parse(f.Path, f.Data)
	}
	switch {
	case err != nil:
		res.Errors = append(res.Errors, FileError{Container: res.Container, Source: res.Source, Path: f.Path, Err: err})
	case cert != nil:
		res.Certs = append(res.Certs, CertFile{Container: res.Container, Source: res.Source, Path: f.Path, Cert: cert})
	}
}

func (d *dockerSource) readUI(ctx context.Context, c rancher.Container, urlConflict bool) SourceResult {
	start := time.Now()
	res := SourceResult{Container: c.Name, Source: SourceUI}
	target, err := d.uiTarget(c)
	if urlConflict {
		err = readerr.Newf(readerr.NoUIAddress, "--rancher.url names one UI, but several Rancher containers are read: give --rancher.container")
	}
	var path string
	if err == nil {
		path = target.url
		cert, perr := probeUI(ctx, target)
		if perr == nil {
			res.Up = true
			res.Certs = []CertFile{{Container: c.Name, Source: SourceUI, Path: target.url, Cert: certs.InfoOf(cert)}}
		}
		err = perr
	}
	if err != nil {
		res.Errors = []FileError{{Container: c.Name, Source: SourceUI, Path: path, Err: err}}
	}
	res.Duration = time.Since(start)
	d.errs.observe(c.Name+"/ui", res.Errors)
	return res
}

func (d *dockerSource) uiTarget(c rancher.Container) (uiTarget, error) {
	if d.cfg.UIURL != "" {
		return uiTargetFromURL(d.cfg.UIURL)
	}
	if c.UIAddress == "" {
		return uiTarget{}, readerr.Newf(readerr.NoUIAddress, "container %s publishes no 443/tcp and has no IP address", c.Name)
	}
	return uiTargetFromAddr(c.UIAddress), nil
}

func (d *dockerSource) cache(id string) *certs.Cache {
	c, ok := d.caches.Get(id)
	if !ok {
		c = &certs.Cache{}
		d.caches.Put(id, c)
	}
	return c
}

func (d *dockerSource) knownNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cfg.Containers) > 0 {
		return d.cfg.Containers
	}
	return d.known
}

// trackEngine logs when the engine becomes unreachable and when it answers again.
func (d *dockerSource) trackEngine(err error) {
	msg := ""
	if err != nil {
		msg = readerr.ReasonOf(err)
	}
	d.mu.Lock()
	prev := d.downErr
	d.downErr = msg
	d.mu.Unlock()
	switch {
	case msg != "" && prev == "":
		level.Error(d.logger).Log("msg", "Docker engine failing; containers reported down", "err", err)
	case msg == "" && prev != "":
		level.Info(d.logger).Log("msg", "Docker engine answers again")
	}
}

// engineUnreachable tells whether a read failed because the engine did not answer, which is
// how a down engine shows when containers are named explicitly and nothing is listed.
func engineUnreachable(results []SourceResult) bool {
	for _, r := range results {
		for _, e := range r.Errors {
			if readerr.ReasonOf(e.Err) == readerr.DockerUnreachable {
				return true
			}
		}
	}
	return false
}
