package collector

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// sourceState is the last read of one source of one container. A scrape reads it; a read
// replaces it when the container started or restarted, the refresh interval has passed, or —
// after a backoff — the last read failed. At most one read runs at a time, and only the scrape
// that starts it waits for it (within its budget) — others use the values they find, unless
// there are none yet.
type sourceState struct {
	container, source string
	// keepGood reports the certificates of the last read that worked when a read fails.
	keepGood bool

	mu      sync.Mutex
	last    model.SourceResult // the last completed read
	good    model.SourceResult // the last read that worked
	basis   readBasis          // the container as it was when the last read started
	running chan struct{}      // closed when the running read ends; nil when none runs
	reads   int                // completed reads
	// failures counts the reads that failed in a row; a failed source is read again from
	// retryAt: 1 s after the first failure, doubling up to the refresh interval, so that a
	// failing source (a crash-looping server) is not read at every scrape.
	failures int
	retryAt  time.Time
}

// firstRetry is the backoff after a first failed read.
const firstRetry = time.Second

// backoff is how long after the n-th failure in a row a source is read again.
func backoff(n int, interval time.Duration) time.Duration {
	d := firstRetry
	for i := 1; i < n && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

// readBasis is what makes a container's tree change: a start (a restart by the restart
// policy bumps the count), and — where the engine's events are followed — a death.
type readBasis struct {
	startedAt time.Time
	restarts  int
	deaths    int64
}

func basisOf(c rancher.Container) readBasis {
	return readBasis{startedAt: c.StartedAt, restarts: c.RestartCount}
}

// startSettle is how long k3s may take to renew its certificates after a start, and
// settlePoints when, after a start, what was read before is read once more: a read that follows
// the start event closely may see the tree before k3s renewed it, and most starts have renewed
// within a second or five.
const startSettle = 30 * time.Second

var settlePoints = []time.Duration{time.Second, 5 * time.Second, startSettle}

// due tells whether the state needs a new read for the container as it is now: it is new, it
// started since (or restarted), its last read failed and the backoff has passed, the interval
// has passed, or the last read came before a settle point after the start that has passed.
func (s *sourceState) due(now time.Time, b readBasis, interval time.Duration) bool {
	last := s.last.ReadAt
	switch {
	case last.IsZero(), s.basis != b:
		return true
	case !s.last.Up:
		return !now.Before(s.retryAt)
	}
	for _, p := range settlePoints {
		if at := b.startedAt.Add(p); last.Before(at) && !now.Before(at) {
			return true
		}
	}
	return now.Sub(last) >= interval
}

// get returns the values to report, starting a read when one is due and waiting for it (within
// ctx) when it started it or there is nothing to report yet. read runs detached from the caller,
// bounded by its own timeout, so a read a scrape gave up on still lands.
func (s *sourceState) get(ctx context.Context, b readBasis, interval time.Duration, read func(context.Context) model.SourceResult, timeout time.Duration) model.SourceResult {
	started := s.kick(b, interval, read, timeout)
	return s.await(ctx, started)
}

// kick starts a read when one is due and none runs, and tells whether it did; it never waits.
func (s *sourceState) kick(b readBasis, interval time.Duration, read func(context.Context) model.SourceResult, timeout time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running != nil || !s.due(time.Now(), b, interval) {
		return false
	}
	s.running = make(chan struct{})
	go s.read(b, interval, read, timeout, s.running)
	return true
}

// peek returns the values to report, and starts no read but the first; it waits (within ctx)
// for the running read only when there is nothing to report yet.
func (s *sourceState) peek(ctx context.Context, b readBasis, interval time.Duration, read func(context.Context) model.SourceResult, timeout time.Duration) model.SourceResult {
	s.mu.Lock()
	never := s.last.ReadAt.IsZero()
	s.mu.Unlock()
	if never {
		s.kick(b, interval, read, timeout)
	}
	return s.await(ctx, false)
}

// await returns the last read, after the running one when wait is set or nothing was read yet.
func (s *sourceState) await(ctx context.Context, wait bool) model.SourceResult {
	s.mu.Lock()
	running := s.running
	if s.last.ReadAt.IsZero() {
		wait = true // nothing to report yet: wait for whichever read runs
	}
	s.mu.Unlock()
	if wait && running != nil {
		select {
		case <-running:
		case <-ctx.Done():
			return s.overrun()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *sourceState) read(b readBasis, interval time.Duration, read func(context.Context) model.SourceResult, timeout time.Duration, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	res := read(ctx)
	cancel()
	res.ReadAt = time.Now()
	s.mu.Lock()
	if !res.Up && s.keepGood {
		res.Certs, res.Settings, res.Services, res.Clusters = s.good.Certs, s.good.Settings, s.good.Services, s.good.Clusters
	}
	if sameCerts(s.last.Certs, res.Certs) {
		res.Certs = s.last.Certs // unchanged: the cached exposition stays valid
	}
	if s.basis != b {
		s.failures = 0 // a new start: the backoff starts over
	}
	s.last, s.basis, s.running = res, b, nil
	if res.Up {
		s.good, s.failures = res, 0
	} else {
		s.failures++
		s.retryAt = res.ReadAt.Add(backoff(s.failures, interval))
	}
	s.reads++
	s.mu.Unlock()
	close(done)
}

// overrun is what a scrape reports when its budget ran out waiting: the last good values,
// down, with the reason.
func (s *sourceState) overrun() model.SourceResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := s.good
	res.Container, res.Source, res.Up = s.container, s.source, false
	res.Errors = append(slices.Clip(res.Errors), model.FileError{Container: s.container, Source: s.source,
		Err: readerr.Newf(readerr.Timeout, "the %s read of %q did not end within the scrape's budget", s.source, s.container)})
	return res
}

// completedReads is how many reads of the source ended.
func (s *sourceState) completedReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func sameCerts(a, b []model.CertFile) bool {
	return slices.EqualFunc(a, b, func(x, y model.CertFile) bool { return x == y })
}
