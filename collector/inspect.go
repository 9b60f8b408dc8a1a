package collector

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// roundTimeout bounds one inspection of the containers, detached from any scrape.
const roundTimeout = 10 * time.Second

// round is one inspection of the selected containers.
type round struct {
	containers []rancher.Container
	failed     []model.SourceResult // targets that could not be inspected
	err        error                // the engine failed as a whole
	at         time.Time            // when it ended (or, kept current by events, last changed)
}

// inspect lists and inspects the selected containers, once for all concurrent scrapes. An
// inspection that outlasts a scrape's budget is an engine that does not answer: that scrape
// reports it down (timeout), and while the inspection hangs, later scrapes do not wait for it.
func (d *dockerSource) inspect(ctx context.Context) round {
	ch := d.rounds.DoChan("round", d.doRound)
	d.mu.Lock()
	hung := d.hung
	d.mu.Unlock()
	if hung {
		select {
		case res := <-ch:
			return res.Val.(round)
		default:
			return d.hangs()
		}
	}
	select {
	case res := <-ch:
		return res.Val.(round)
	case <-ctx.Done():
		return d.hangs()
	}
}

// roundNow inspects the containers now and waits for it, sharing an inspection that runs.
func (d *dockerSource) roundNow(ctx context.Context) round {
	select {
	case res := <-d.rounds.DoChan("round", d.doRound):
		return res.Val.(round)
	case <-ctx.Done():
		return round{err: ctx.Err()}
	}
}

// doRound is one inspection, detached from whoever asked for it, and what it found kept.
func (d *dockerSource) doRound() (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	r := d.inspectAll(ctx)
	r.at = time.Now()
	d.trackEngine(r.err)
	d.mu.Lock()
	if r.err == nil {
		d.noteFound(r)
		d.lastRound = r
		d.prune(r)
	}
	d.hung = false
	d.mu.Unlock()
	return r, nil
}

// inspectSome inspects the containers the events named, and updates them in the last round. A
// container that is gone, or an engine that fails, takes a whole round.
func (d *dockerSource) inspectSome(ctx context.Context, ids map[string]bool) {
	ctx, cancel := context.WithTimeout(ctx, roundTimeout)
	defer cancel()
	found := map[string]rancher.Container{}
	for id := range ids {
		c, err := rancher.Inspect(ctx, d.cli, id)
		if err != nil {
			d.roundNow(ctx)
			return
		}
		found[id] = c
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.lastRound
	r.containers = slices.Clone(r.containers)
	for i, c := range r.containers {
		if n, ok := found[c.ID]; ok {
			r.containers[i] = n
		}
	}
	r.at = time.Now()
	d.lastRound = r
}

// view is the last round, as the events keep it.
func (d *dockerSource) view() round {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastRound
}

// watches tells whether the container with the ID is one the last round read.
func (d *dockerSource) watches(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.lastRound.containers {
		if c.ID == id {
			return true
		}
	}
	return false
}

// hangs is the round of an engine whose inspection did not end within a scrape's budget.
func (d *dockerSource) hangs() round {
	d.mu.Lock()
	d.hung = true
	d.mu.Unlock()
	err := readerr.Newf(readerr.Timeout, "the Docker engine at %s did not answer within the scrape's budget", d.host)
	d.errs.count(model.SourceK3s, err)
	d.trackEngine(err)
	return round{err: err}
}

// noteFound logs the first inspection that finds no Rancher container, with where it looked,
// and each container found from then on. Called with d.mu held.
func (d *dockerSource) noteFound(r round) {
	if len(r.containers) == 0 && len(r.failed) == 0 {
		if !d.noneLogged {
			d.noneLogged = true
			d.logger.Warn("no Rancher container found", "engine", d.host, "looked_for", d.looked(),
				"hint", "start Rancher, name its container with --rancher.container, or try make demo for a simulated one")
		}
		return
	}
	d.noneLogged = false
	known := map[string]bool{}
	for _, c := range d.lastRound.containers {
		known[c.ID] = true
	}
	for _, c := range r.containers {
		if !known[c.ID] {
			d.logger.Info("found Rancher container", "container", c.Name, "image", c.Image,
				"rancher_version", rancher.OrUnknown(c.Profile.Rancher), "k3s_version", rancher.OrUnknown(c.Profile.K3s), "state", c.State)
		}
	}
}

// where says where the exporter looks for Rancher containers.
func (d *dockerSource) where() string {
	return d.looked() + " on the Docker engine at " + d.host
}

// looked says which containers the exporter looks for.
func (d *dockerSource) looked() string {
	if len(d.cfg.Containers) > 0 {
		return "the containers named " + strings.Join(d.cfg.Containers, ", ")
	}
	return "containers of rancher/rancher images (any registry, tag or digest), running or not"
}

func (d *dockerSource) inspectAll(ctx context.Context) round {
	targets := d.cfg.Containers
	if len(targets) == 0 && d.cfg.Discover {
		var err error
		var superseded []rancher.Superseded
		if targets, superseded, err = rancher.Discover(ctx, d.cli); err != nil {
			d.errs.count(model.SourceK3s, err) // logged by trackEngine
			return round{err: err}
		}
		d.noteSuperseded(superseded)
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
				d.errs.count(model.SourceK3s, errs[i])
				return round{err: errs[i]}
			}
			res := model.SourceResult{Container: target, Source: model.SourceK3s, ReadAt: time.Now(),
				Errors: []model.FileError{{Container: target, Source: model.SourceK3s, Path: target, Err: errs[i]}}}
			d.errs.observe(target, model.SourceK3s, res.Errors)
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

// noteSuperseded logs once each container discovery leaves out for another on its data volume.
func (d *dockerSource) noteSuperseded(list []rancher.Superseded) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := map[rancher.Superseded]bool{}
	for _, s := range list {
		now[s] = true
		if !d.superseded[s] {
			d.logger.Info("Rancher container left out: it shares its data volume with another, which is read instead (an upgrade leaves the old container and a data container)",
				"container", s.Name, "read", s.By)
		}
	}
	d.superseded = now
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

// engineDown reports each source of each container of the last inspection with its last good
// values, down.
func (d *dockerSource) engineDown(err error) dockerResult {
	d.mu.Lock()
	last := d.lastRound
	states := make([]*containerState, len(last.containers))
	for i, c := range last.containers {
		states[i] = d.containers[c.ID]
	}
	d.mu.Unlock()
	out := dockerResult{treeReads: map[string]int{}, watching: len(last.containers)}
	if len(last.containers) == 0 {
		names := d.cfg.Containers
		if len(names) == 0 {
			names = []string{""}
		}
		for _, name := range names {
			out.sources = append(out.sources, model.SourceResult{Container: name, Source: model.SourceK3s, ReadAt: time.Now(),
				Errors: []model.FileError{{Container: name, Source: model.SourceK3s, Path: d.host, Err: err}}})
		}
		return out
	}
	for i, c := range last.containers {
		if states[i] == nil {
			continue
		}
		for _, s := range sources {
			st := states[i].states[s.name]
			if st == nil {
				continue
			}
			st.mu.Lock()
			res := st.good
			st.mu.Unlock()
			res.Container, res.Source, res.Up = c.Name, s.name, false
			res.Errors = []model.FileError{{Container: c.Name, Source: s.name, Path: d.host, Err: err}}
			out.sources = append(out.sources, res)
		}
		out.treeReads[c.Name] = states[i].states[model.SourceK3s].completedReads()
	}
	return out
}

// trackEngine logs when the engine becomes unreachable and when it answers again.
func (d *dockerSource) trackEngine(err error) {
	msg := ""
	if err != nil {
		msg = readerr.ReasonOf(err)
	}
	d.mu.Lock()
	prev := d.downErr
	d.downErr, d.lastErr = msg, err
	d.mu.Unlock()
	switch {
	case msg != "" && prev == "":
		d.logger.Error("Docker engine failing; containers reported down", "err", err)
	case msg == "" && prev != "":
		d.logger.Info("Docker engine answers again")
	}
}

// engineUnreachable tells whether a read failed because the engine did not answer.
func engineUnreachable(results []model.SourceResult) bool {
	for _, r := range results {
		for _, e := range r.Errors {
			if readerr.ReasonOf(e.Err) == readerr.DockerUnreachable {
				return true
			}
		}
	}
	return false
}

// failing is the error of the engine's last inspection, if it failed.
func (d *dockerSource) failing() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}
