package autorotate

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
)

// Snapshots is where the scheduler sees the containers and their certificates as they stand:
// the collector, which keeps them current in the background.
type Snapshots interface {
	Current(ctx context.Context) model.Snapshot
}

// tick is how often decisions are made.
const tick = 5 * time.Second

// Scheduler decides, for every Rancher container, when its certificates are rotated, and
// starts the rotations (in mode on).
type Scheduler struct {
	cfg    Config
	rot    *rotation.Rotator
	jobs   *rotation.Jobs
	snaps  Snapshots
	logger *slog.Logger
	next   *prometheus.GaugeVec

	mu        sync.Mutex
	decisions map[string]Decision // the last, by container
	// earlier are the automatic rotations of earlier processes, from their journals; this
	// process's are asked of jobs.
	earlier map[string]past
	told    map[string]string // the automatic job whose end was logged, by container
}

// past is when a container's last automatic rotation ended, and when the last one failed.
type past struct{ ended, failed time.Time }

// lastFailed: the last automatic rotation failed.
func (p past) lastFailed() bool { return !p.failed.IsZero() && p.failed.Equal(p.ended) }

// New makes a scheduler and registers its metric. The failures of earlier processes' automatic
// rotations, from the journals, start their backoff.
func New(cfg Config, rot *rotation.Rotator, jobs *rotation.Jobs, snaps Snapshots, reg prometheus.Registerer, logger *slog.Logger) *Scheduler {
	s := &Scheduler{cfg: cfg, rot: rot, jobs: jobs, snaps: snaps, logger: logger,
		next:      metrics.AutoRotationNext.GaugeVec(),
		decisions: map[string]Decision{}, earlier: map[string]past{}, told: map[string]string{},
	}
	reg.MustRegister(s.next)
	for _, rep := range rot.Reports(jobs) { // newest first
		if rep.Trigger != rotation.TriggerAuto || rep.Kind != rotation.KindRotate || rep.State == rotation.Running {
			continue
		}
		p := s.earlier[rep.Container]
		if p.ended.IsZero() {
			p.ended = rep.Finished
		}
		if p.failed.IsZero() && rep.State == rotation.Failed {
			p.failed = rep.Finished
		}
		s.earlier[rep.Container] = p
	}
	return s
}

// history is a container's automatic rotations: whether one runs, when the last ended and when
// the last failed — this process's jobs first, else the earlier processes'.
func (s *Scheduler) history(container string) (running bool, p past) {
	p = s.earlier[container]
	last, ok := s.jobs.Last(container, rotation.TriggerAuto)
	if !ok {
		return false, p
	}
	if last.State == rotation.Running {
		return true, p
	}
	s.tellEnd(last)
	p.ended = last.Finished
	if failed, ok := s.jobs.Last(container, rotation.TriggerAuto, rotation.Failed); ok {
		p.failed = failed.Finished
	}
	return false, p
}

// Run decides every few seconds until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	s.logger.Info("automatic rotation", "mode", s.cfg.Mode, "before", days(s.cfg.Before), "window", s.cfg.Window.String(), "backoff", s.cfg.Backoff)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		s.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round makes one decision per container from the freshest snapshot there is.
func (s *Scheduler) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap := s.snaps.Current(ctx)
	if s.cfg.Mode == On {
		s.rot.Resume(ctx, s.jobs, false) // a container a dead CLI stopped is brought back before deciding
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	certs := snap.Certs()
	seen := map[string]bool{}
	for _, c := range snap.Containers {
		seen[c.Name] = true
		running, p := s.history(c.Name)
		if running {
			continue
		}
		if !readSince(snap, c.Name, p.ended) && !p.lastFailed() {
			// The certificates are from before our last rotation: wait for a fresh read. After
			// a failure the decision is a wait for the backoff's end, which holds either way.
			continue
		}
		d := decide(now, c, certs, s.cfg, p.failed)
		s.record(d)
		if d.Action == Rotate && s.cfg.Mode == On {
			s.start(c, d)
		}
	}
	for name := range s.decisions {
		if !seen[name] {
			delete(s.decisions, name)
			s.next.DeleteLabelValues(name)
		}
	}
}

// readSince tells whether the container's k3s tree was read after t.
func readSince(snap model.Snapshot, container string, t time.Time) bool {
	for _, r := range snap.Sources {
		if r.Container == container && r.Source == model.SourceK3s {
			return r.ReadAt.After(t)
		}
	}
	return false
}

// record keeps a decision, sets the metric, and logs it when it changed.
func (s *Scheduler) record(d Decision) {
	prev, had := s.decisions[d.Container]
	s.decisions[d.Container] = d
	if d.Action == Rotate || d.Action == Wait {
		s.next.WithLabelValues(d.Container).Set(float64(d.At.Unix()))
	} else {
		s.next.DeleteLabelValues(d.Container)
	}
	if had && prev.Action == d.Action && prev.Path == d.Path && (d.Action == Rotate || prev.At.Equal(d.At)) {
		return
	}
	action := d.Action
	if s.cfg.Mode == Plan && (action == Rotate || action == Wait) {
		action = "would " + action
	}
	attrs := []any{"container", d.Container, "decision", action, "reason", d.Why}
	if !d.At.IsZero() {
		attrs = append(attrs, "at", d.At.UTC().Format(time.RFC3339))
	}
	s.logger.Info("automatic rotation", attrs...)
}

// start runs an automatic rotation with strategy auto.
func (s *Scheduler) start(c rancher.Container, d Decision) {
	job, err := s.rot.NewRotation(c, rotation.Request{Strategy: rotation.Auto}, rotation.TriggerAuto)
	var busy *rotation.ErrBusy
	switch {
	case errors.As(err, &busy):
		s.logger.Info("automatic rotation put off: the container is busy", "container", c.Name, "holder", busy.Holder)
		return
	case err != nil:
		s.logger.Error("automatic rotation not started", "container", c.Name, "err", err)
		return
	}
	s.jobs.Start(job)
	s.logger.Info("automatic rotation started", "container", c.Name, "job", job.Report().ID, "reason", d.Why)
}

// tellEnd logs, once, how an automatic job of this process ended.
func (s *Scheduler) tellEnd(rep rotation.Report) {
	name := rep.Container
	if s.told[name] == rep.ID {
		return
	}
	s.told[name] = rep.ID
	if rep.State == rotation.Failed {
		s.logger.Error("automatic rotation failed", "container", name, "job", rep.ID, "err", rep.Error,
			"backup", rep.Backup, "next_attempt_after", rep.Finished.Add(s.cfg.Backoff).UTC().Format(time.RFC3339))
		return
	}
	s.logger.Info("automatic rotation succeeded", "container", name, "job", rep.ID, "strategy", rep.Strategy, "backup", rep.Backup)
	// The decision to rotate is done with; the next waits for a read of what the rotation
	// renewed.
	s.decisions[name] = Decision{Container: name, Action: None, Why: "rotated " + stamp(rep.Finished) + "; waiting for a read of the renewed certificates"}
	s.next.DeleteLabelValues(name)
}

// Planned is the last decision about a container, for the status page.
func (s *Scheduler) Planned(container string) (Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.decisions[container]
	return d, ok
}

// Mode is the configured mode.
func (s *Scheduler) Mode() string { return s.cfg.Mode }
