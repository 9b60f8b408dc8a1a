package collector

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
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
	superseded map[rancher.Superseded]bool // left out by discovery, as last logged
	noneLogged bool                        // "no Rancher container found" was logged since one was seen
	hung       bool                        // a scrape's budget ran out on the inspection that still runs
}

// containerState holds the sources of one container between scrapes.
type containerState struct {
	states     map[string]*sourceState // by source name
	caches     map[string]*certs.Cache // parsed certificates, by source name
	kubeconfig kubeconfigShare
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
	watching   int            // containers watched
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
	env := readEnv{engine: d.cli, cfg: d.cfg, urlConflict: d.cfg.UIURL != "" && len(r.containers) > 1}
	results := make([][]SourceResult, len(r.containers))
	states := make([]*containerState, len(r.containers))
	var wg sync.WaitGroup
	for i, c := range r.containers {
		states[i] = d.state(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.sources(ctx, env, c, states[i])
		}()
	}
	wg.Wait()
	for i, rs := range results {
		out.sources = append(out.sources, rs...)
		out.treeReads[r.containers[i].Name] = states[i].states[SourceK3s].completedReads()
	}
	out.sources = append(out.sources, r.failed...)
	out.containers, out.watching = r.containers, len(r.containers)
	out.up = !engineUnreachable(out.sources)
	return out
}

// sources reports the sources of one container, read concurrently where due.
func (d *dockerSource) sources(ctx context.Context, env readEnv, c rancher.Container, st *containerState) []SourceResult {
	b := basisOf(c)
	env.kubeconfig = func(ctx context.Context) ([]byte, error) { return st.kubeconfig.read(ctx, env.engine, c) }
	var due []source
	for _, s := range sources {
		if s.reads(d.cfg, c) {
			due = append(due, s)
		}
	}
	out := make([]SourceResult, len(due))
	var wg sync.WaitGroup
	for i, s := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read := func(ctx context.Context) SourceResult {
				start := time.Now()
				res := s.read(ctx, env, c).result(s, c, st.caches[s.name])
				res.Duration = time.Since(start)
				d.errs.observe(c.Name+"/"+s.name, res.Errors)
				return res
			}
			out[i] = st.states[s.name].get(ctx, b, s.interval(d.cfg), read, s.timeout)
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
		st = &containerState{states: map[string]*sourceState{}, caches: map[string]*certs.Cache{}}
		for _, s := range sources {
			st.states[s.name] = &sourceState{container: c.Name, source: s.name, keepGood: s.keepLastGood}
			st.caches[s.name] = &certs.Cache{}
		}
		d.containers[c.ID] = st
	}
	return st
}
