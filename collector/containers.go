package collector

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
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
	// ResyncInterval is how often the containers are inspected whole while the engine's events
	// are followed.
	ResyncInterval time.Duration
	// Downstream reads the clusters each server manages.
	Downstream bool
}

// Defaults of the refresh intervals.
const (
	DefaultRefreshInterval   = 5 * time.Minute
	DefaultUIRefreshInterval = time.Minute
)

// dockerSource reads the sources of each Rancher container. Every scrape inspects the
// containers (state, restart count and start time stay exact); the sources are read again only
// when due (see sourceState).
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
	downErr    string                      // the reason the engine is failing with, for start and end logs
	lastErr    error                       // the error of the last inspection; nil when it worked
	superseded map[rancher.Superseded]bool // left out by discovery, as last logged
	noneLogged bool                        // "no Rancher container found" was logged since one was seen
	hung       bool                        // a scrape's budget ran out on the inspection that still runs
	// events keeps the containers current from the engine's events; nil unless the collector
	// runs (serve), when an engine that streams events is given.
	events *eventWatch
}

// containerState holds the sources of one container between scrapes.
type containerState struct {
	states     map[string]*sourceState // by source name
	caches     map[string]*certs.Cache // parsed certificates, by source name
	kubeconfig kubeconfigShare
	deaths     atomic.Int64 // deaths the engine's events told of
}

// basis is what the container's reads are of: its start, and the deaths the events told of.
func (st *containerState) basis(c rancher.Container) readBasis {
	b := basisOf(c)
	b.deaths = st.deaths.Load()
	return b
}

func newDockerSource(cfg DockerConfig, cli rancher.Engine, host string, logger *slog.Logger, errs *errorTracker) *dockerSource {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.UIRefreshInterval <= 0 {
		cfg.UIRefreshInterval = DefaultUIRefreshInterval
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	return &dockerSource{cfg: cfg, cli: cli, host: host, logger: logger, errs: errs, containers: map[string]*containerState{}}
}

// dockerResult is what one gather found of the containers.
type dockerResult struct {
	containers []rancher.Container
	sources    []model.SourceResult
	up         bool
	treeReads  map[string]int // by container name
	watching   int            // containers watched
}

// gather reports every selected container and each of its sources. While the engine's events
// are followed, the containers are as the events keep them and the sources as the background
// reads left them: nothing here calls the engine. Otherwise every gather inspects the containers
// (one inspection shared with concurrent scrapes) and reads again, and waits for, what is due.
// When the engine does not answer, each container known from the last inspection keeps its last
// good values, down.
//
// current asks for the containers as they stand, without an inspection unless there was none yet:
// while the events are not followed, the last inspection's.
func (d *dockerSource) gather(ctx context.Context, current bool) dockerResult {
	r := d.view()
	live := d.events.following() || current && !r.at.IsZero()
	if !live {
		r = d.inspect(ctx)
	} else if err := d.failing(); err != nil {
		r.err = err
	}
	if r.err != nil {
		return d.engineDown(r.err)
	}
	out := dockerResult{up: true, treeReads: map[string]int{}}
	results := make([][]model.SourceResult, len(r.containers))
	states := make([]*containerState, len(r.containers))
	var wg sync.WaitGroup
	for i, c := range r.containers {
		states[i] = d.state(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.sources(ctx, d.env(r), c, states[i], live)
		}()
	}
	wg.Wait()
	for i, rs := range results {
		out.sources = append(out.sources, rs...)
		out.treeReads[r.containers[i].Name] = states[i].states[model.SourceK3s].completedReads()
	}
	out.sources = append(out.sources, r.failed...)
	out.containers, out.watching = r.containers, len(r.containers)
	out.up = !engineUnreachable(out.sources)
	return out
}

// env is what the reads of a round's containers may use.
func (d *dockerSource) env(r round) readEnv {
	return readEnv{engine: d.cli, cfg: d.cfg, urlConflict: d.cfg.UIURL != "" && len(r.containers) > 1}
}

// sources reports the sources of one container: with peek, as the last reads left them (the
// first read excepted); otherwise read again concurrently where due, waiting for those reads.
func (d *dockerSource) sources(ctx context.Context, env readEnv, c rancher.Container, st *containerState, peek bool) []model.SourceResult {
	due := d.due(c)
	out := make([]model.SourceResult, len(due))
	var wg sync.WaitGroup
	for i, s := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, interval, read := st.basis(c), s.interval(d.cfg), d.reader(env, c, st, s)
			if peek {
				out[i] = st.states[s.name].peek(ctx, b, interval, read, s.timeout)
			} else {
				out[i] = st.states[s.name].get(ctx, b, interval, read, s.timeout)
			}
		}()
	}
	wg.Wait()
	return out
}

// kick starts the reads of a container's sources that are due, without waiting for them.
func (d *dockerSource) kick(env readEnv, c rancher.Container, st *containerState) {
	for _, s := range d.due(c) {
		st.states[s.name].kick(st.basis(c), s.interval(d.cfg), d.reader(env, c, st, s), s.timeout)
	}
}

// due lists the sources read for the container as it is now.
func (d *dockerSource) due(c rancher.Container) []source {
	var out []source
	for _, s := range sources {
		if s.on(d.cfg) && s.reads(d.cfg, c) {
			out = append(out, s)
		}
	}
	return out
}

// reader is one read of a source of the container, timed and its errors tracked.
func (d *dockerSource) reader(env readEnv, c rancher.Container, st *containerState, s source) func(context.Context) model.SourceResult {
	env.kubeconfig = func(ctx context.Context) ([]byte, error) { return st.kubeconfig.read(ctx, env.engine, c) }
	return func(ctx context.Context) model.SourceResult {
		start := time.Now()
		res := s.read(ctx, env, c).result(s, c, st.caches[s.name])
		res.Duration = time.Since(start)
		d.errs.observe(c.Name, s.name, res.Errors)
		return res
	}
}

// refresh reads the due sources of the containers in the background, after each inspection and
// every second (a backoff or an interval ends), until ctx ends; while the events are not
// followed it also inspects the containers when nothing else did for fallbackRound.
func (d *dockerSource) refresh(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.events.changed:
		}
		r := d.view()
		if !d.events.following() && time.Since(r.at) > fallbackRound {
			r = d.roundNow(ctx) // no event tells of changes: look now and then, scraped or not
		}
		for _, c := range r.containers {
			d.kick(d.env(r), c, d.state(c))
		}
	}
}

// fallbackRound is how old the containers may get in the background while the engine's events
// are not followed.
const fallbackRound = 30 * time.Second

// died notes that a container the events name died: its sources are read again.
func (d *dockerSource) died(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.containers[id]; ok {
		st.deaths.Add(1)
	}
}

// state returns the container's state, made on first sight.
func (d *dockerSource) state(c rancher.Container) *containerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.containers[c.ID]
	if !ok {
		st = &containerState{states: map[string]*sourceState{}, caches: map[string]*certs.Cache{}}
		for _, s := range sources {
			st.states[s.name] = &sourceState{container: c.Name, source: s.name, keepGood: s.keepLastGood}
			st.caches[s.name] = &certs.Cache{}
		}
		d.containers[c.ID] = st
	}
	return st
}
