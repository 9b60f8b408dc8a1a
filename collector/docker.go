package collector

import (
	"context"
	"encoding/pem"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// DockerConfig selects the Rancher containers to read and how often.
type DockerConfig struct {
	Containers []string // names or IDs; when given, only these
	Discover   bool     // find containers of rancher/rancher images
	UIURL      string   // probe this URL for the UI instead of the published port
	Secrets    bool     // read the certificates of each container's cluster secrets
	// RefreshInterval is how long a container's certificate tree and secrets are trusted
	// without a start of the container; UIRefreshInterval the same for the UI certificate.
	RefreshInterval, UIRefreshInterval time.Duration
}

// Defaults of the refresh intervals.
const (
	DefaultRefreshInterval   = 5 * time.Minute
	DefaultUIRefreshInterval = time.Minute
)

// Timeouts of one read, detached from any scrape: a read a scrape gave up on still lands.
const (
	treeTimeout   = 30 * time.Second
	uiReadTimeout = 10 * time.Second
	roundTimeout  = 10 * time.Second
)

// dockerSource reads the k3s tree, the UI certificate and the cluster secrets of each Rancher
// container. Every scrape inspects the containers (state, restart count and start time stay
// exact); the sources are read again only when due (see sourceState).
type dockerSource struct {
	cfg    DockerConfig
	cli    rancher.Engine
	host   string // the engine's address, for errors
	logger *slog.Logger
	errs   *errorTracker
	rounds singleflight.Group

	mu         sync.Mutex
	containers map[string]*containerState // by ID
	lastRound  round
	downErr    string // the reason the engine is failing with, for start and end logs
}

// containerState holds the sources of one container between scrapes.
type containerState struct {
	k3s, ui, secret sourceState
	caches          map[string]*certs.Cache // parsed certificates by source
}

// round is one inspection of the selected containers.
type round struct {
	containers []rancher.Container
	failed     []SourceResult // targets that could not be inspected
	err        error          // the engine failed as a whole
}

func newDockerSource(cfg DockerConfig, cli rancher.Engine, host string, logger *slog.Logger, errs *errorTracker) *dockerSource {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.UIRefreshInterval <= 0 {
		cfg.UIRefreshInterval = DefaultUIRefreshInterval
	}
	return &dockerSource{cfg: cfg, cli: cli, host: host, logger: logger, errs: errs, containers: map[string]*containerState{}}
}

// dockerResult is what one gather found of the containers.
type dockerResult struct {
	containers []rancher.Container
	sources    []SourceResult
	up         bool
	treeReads  map[string]int // by container name
}

// gather reports every selected container: an inspection shared with concurrent scrapes, then
// each source from its state, read again where due. When the engine does not answer, each
// container known from the last inspection keeps its last good values, down.
func (d *dockerSource) gather(ctx context.Context) dockerResult {
	r := d.inspect(ctx)
	if r.err != nil {
		return d.engineDown(r.err)
	}
	out := dockerResult{up: true, treeReads: map[string]int{}}
	// --rancher.url names one UI; with several containers it cannot say whose it is.
	urlConflict := d.cfg.UIURL != "" && len(r.containers) > 1
	results := make([][]SourceResult, len(r.containers))
	states := make([]*containerState, len(r.containers))
	var wg sync.WaitGroup
	for i, c := range r.containers {
		states[i] = d.state(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.sources(ctx, c, states[i], urlConflict)
		}()
	}
	wg.Wait()
	for i, rs := range results {
		out.sources = append(out.sources, rs...)
		out.treeReads[r.containers[i].Name] = states[i].k3s.completedReads()
	}
	out.sources = append(out.sources, r.failed...)
	out.containers = r.containers
	out.up = !engineUnreachable(out.sources)
	return out
}

// sources reports the sources of one container, read concurrently where due.
func (d *dockerSource) sources(ctx context.Context, c rancher.Container, st *containerState, urlConflict bool) []SourceResult {
	b := basisOf(c)
	type source struct {
		state    *sourceState
		interval time.Duration
		timeout  time.Duration
		read     func(context.Context) SourceResult
	}
	list := []source{{&st.k3s, d.cfg.RefreshInterval, treeTimeout, func(ctx context.Context) SourceResult { return d.readK3s(ctx, c, st) }}}
	if c.State == container.StateRunning || d.cfg.UIURL != "" {
		list = append(list, source{&st.ui, d.cfg.UIRefreshInterval, uiReadTimeout, func(ctx context.Context) SourceResult { return d.readUI(ctx, c, st, urlConflict) }})
	}
	if d.cfg.Secrets {
		list = append(list, source{&st.secret, d.cfg.RefreshInterval, secretTimeout, func(ctx context.Context) SourceResult { return d.readSecrets(ctx, c, st) }})
	}
	out := make([]SourceResult, len(list))
	var wg sync.WaitGroup
	for i, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.state.get(ctx, b, s.interval, s.read, s.timeout)
		}()
	}
	wg.Wait()
	return out
}

// state returns the container's state, made on first sight.
func (d *dockerSource) state(c rancher.Container) *containerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.containers[c.ID]
	if !ok {
		st = &containerState{caches: map[string]*certs.Cache{}}
		for src, s := range map[string]*sourceState{SourceK3s: &st.k3s, SourceUI: &st.ui, SourceSecret: &st.secret} {
			s.container, s.source = c.Name, src
			st.caches[src] = &certs.Cache{}
		}
		d.containers[c.ID] = st
	}
	return st
}

// inspect lists and inspects the selected containers, once for all concurrent scrapes. A scrape
// whose budget runs out first reports the last inspection.
func (d *dockerSource) inspect(ctx context.Context) round {
	ch := d.rounds.DoChan("round", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		defer cancel()
		r := d.inspectAll(ctx)
		d.trackEngine(r.err)
		d.mu.Lock()
		if r.err == nil {
			d.lastRound = r
			d.prune(r)
		}
		d.mu.Unlock()
		return r, nil
	})
	select {
	case res := <-ch:
		return res.Val.(round)
	case <-ctx.Done():
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.lastRound
	}
}

func (d *dockerSource) inspectAll(ctx context.Context) round {
	targets := d.cfg.Containers
	if len(targets) == 0 && d.cfg.Discover {
		var err error
		if targets, err = rancher.Discover(ctx, d.cli); err != nil {
			d.errs.count(SourceK3s, err) // logged by trackEngine
			return round{err: err}
		}
	}
	found := make([]rancher.Container, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i], errs[i] = rancher.Inspect(ctx, d.cli, target)
		}()
	}
	wg.Wait()
	var r round
	seen := map[string]bool{}
	for i, target := range targets {
		if errs[i] != nil {
			if readerr.ReasonOf(errs[i]) == readerr.DockerUnreachable {
				d.errs.count(SourceK3s, errs[i])
				return round{err: errs[i]}
			}
			res := SourceResult{Container: target, Source: SourceK3s, ReadAt: time.Now(),
				Errors: []FileError{{Container: target, Source: SourceK3s, Path: target, Err: errs[i]}}}
			d.errs.observe(target+"/k3s", res.Errors)
			r.failed = append(r.failed, res)
			continue
		}
		if !seen[found[i].ID] { // the same container named twice (name and ID)
			seen[found[i].ID] = true
			r.containers = append(r.containers, found[i])
		}
	}
	return r
}

// prune forgets the containers an inspection no longer found. Called with d.mu held.
func (d *dockerSource) prune(r round) {
	keep := map[string]bool{}
	for _, c := range r.containers {
		keep[c.ID] = true
	}
	for id := range d.containers {
		if !keep[id] {
			delete(d.containers, id)
		}
	}
}

// engineDown reports each container of the last inspection with its last good values, down.
func (d *dockerSource) engineDown(err error) dockerResult {
	d.mu.Lock()
	last := d.lastRound
	states := make([]*containerState, len(last.containers))
	for i, c := range last.containers {
		states[i] = d.containers[c.ID]
	}
	d.mu.Unlock()
	out := dockerResult{treeReads: map[string]int{}}
	if len(last.containers) == 0 {
		names := d.cfg.Containers
		if len(names) == 0 {
			names = []string{""}
		}
		for _, name := range names {
			out.sources = append(out.sources, SourceResult{Container: name, Source: SourceK3s, ReadAt: time.Now(),
				Errors: []FileError{{Container: name, Source: SourceK3s, Path: d.host, Err: err}}})
		}
		return out
	}
	for i, c := range last.containers {
		if states[i] == nil {
			continue
		}
		states[i].k3s.mu.Lock()
		res := states[i].k3s.good
		states[i].k3s.mu.Unlock()
		res.Container, res.Source, res.Up = c.Name, SourceK3s, false
		res.Errors = []FileError{{Container: c.Name, Source: SourceK3s, Path: d.host, Err: err}}
		out.sources = append(out.sources, res)
		out.treeReads[c.Name] = states[i].k3s.completedReads()
	}
	return out
}

func (d *dockerSource) readK3s(ctx context.Context, c rancher.Container, st *containerState) SourceResult {
	start := time.Now()
	res := SourceResult{Container: c.Name, Source: SourceK3s}
	files, err := rancher.ReadTree(ctx, d.cli, c.ID, c.Profile.Locations)
	if err != nil {
		res.Errors = []FileError{{Container: c.Name, Source: SourceK3s, Path: rancher.ServerTLSDir, Err: err}}
	} else {
		res.Up = true
		cache := st.caches[SourceK3s]
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

func (d *dockerSource) readUI(ctx context.Context, c rancher.Container, st *containerState, urlConflict bool) SourceResult {
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
			// Through the cache, so that the same certificate stays the same *Info between reads.
			info, _ := st.caches[SourceUI].Parse(target.url, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
			res.Certs = []CertFile{{Container: c.Name, Source: SourceUI, Path: target.url, Cert: info}}
			st.caches[SourceUI].Sweep()
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
		d.logger.Error("Docker engine failing; containers reported down", "err", err)
	case msg == "" && prev != "":
		d.logger.Info("Docker engine answers again")
	}
}

// engineUnreachable tells whether a read failed because the engine did not answer.
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
