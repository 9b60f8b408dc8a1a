package collector

import (
	"context"
	"sync"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// roundTimeout bounds one inspection of the containers, detached from any scrape.
const roundTimeout = 10 * time.Second

// round is one inspection of the selected containers.
type round struct {
	containers []rancher.Container
	failed     []SourceResult // targets that could not be inspected
	err        error          // the engine failed as a whole
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
		var superseded []rancher.Superseded
		if targets, superseded, err = rancher.Discover(ctx, d.cli); err != nil {
			d.errs.count(SourceK3s, err) // logged by trackEngine
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
		k3s := states[i].states[SourceK3s]
		k3s.mu.Lock()
		res := k3s.good
		k3s.mu.Unlock()
		res.Container, res.Source, res.Up = c.Name, SourceK3s, false
		res.Errors = []FileError{{Container: c.Name, Source: SourceK3s, Path: d.host, Err: err}}
		out.sources = append(out.sources, res)
		out.treeReads[c.Name] = k3s.completedReads()
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
