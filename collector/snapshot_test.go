package collector

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/enginetest"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// adminCert is where the fake's one certificate is.
var adminCert = rancher.ServerTLSDir + "/client-admin.crt"

// newFakeEngine is one running Rancher 2.4 container (server/tls only) whose tree holds one
// certificate.
func newFakeEngine(t testing.TB, notAfter time.Time) *enginetest.Engine {
	return enginetest.New(&enginetest.Container{ID: "c1", Name: "rancher", Image: "rancher/rancher:v2.4.8",
		Env:   []string{"CATTLE_SERVER_VERSION=v2.4.8", "CATTLE_K3S_VERSION=v1.17.2+k3s1"},
		State: container.StateRunning, StartedAt: time.Now().Add(-time.Hour),
		Files: map[string][]byte{adminCert: certPEM(t, "system:admin", 1, notAfter, false)}})
}

// change changes the fake's container.
func change(eng *enginetest.Engine, fn func(c *enginetest.Container)) {
	eng.Change(func(e *enginetest.Engine) { fn(e.Container("c1")) })
}

// archives counts the archive calls of server/tls so far: one per tree read (each read also
// asks for management-state/tls, which the fake's container lacks).
func archives(eng *enginetest.Engine) int {
	return len(eng.Calls("archive c1 " + rancher.ServerTLSDir))
}

func newTestCollector(eng *enginetest.Engine, refresh time.Duration) *Collector {
	return New(Config{Engine: eng, Docker: DockerConfig{Discover: true, RefreshInterval: refresh}}, promslog.NewNopLogger())
}

func k3sResult(t *testing.T, snap model.Snapshot) model.SourceResult {
	t.Helper()
	for _, s := range snap.Sources {
		if s.Source == model.SourceK3s {
			return s
		}
	}
	t.Fatalf("no k3s source in %+v", snap.Sources)
	return model.SourceResult{}
}

func TestTreeReadOnlyOnChange(t *testing.T) {
	expiry := time.Now().Add(40 * 24 * time.Hour).Truncate(time.Second)
	eng := newFakeEngine(t, expiry)
	c := newTestCollector(eng, time.Hour)
	ctx := context.Background()
	first := k3sResult(t, c.Gather(ctx))
	if !first.Up || len(first.Certs) != 1 || !first.Certs[0].Cert.NotAfter.Equal(expiry) {
		t.Fatalf("first gather: %+v", first)
	}
	calls := archives(eng)
	for i := 0; i < 20; i++ {
		if got := k3sResult(t, c.Gather(ctx)); got.Certs[0].Cert != first.Certs[0].Cert {
			t.Fatal("a gather without a change reported other values")
		}
	}
	if n := archives(eng); n != calls {
		t.Fatalf("20 gathers without a change made %d archive calls", n-calls)
	}

	// A restart by the restart policy: read again in that very gather.
	renewed := expiry.Add(365 * 24 * time.Hour)
	change(eng, func(c *enginetest.Container) {
		c.Restarts++
		c.Files[adminCert] = certPEM(t, "system:admin", 2, renewed, false)
	})
	if got := k3sResult(t, c.Gather(ctx)); !got.Certs[0].Cert.NotAfter.Equal(renewed) {
		t.Fatalf("after a restart: %s, want the new tree's %s", got.Certs[0].Cert.NotAfter, renewed)
	}
	// A docker restart: the start time changes.
	change(eng, func(c *enginetest.Container) {
		c.StartedAt = time.Now()
		c.Files[adminCert] = certPEM(t, "system:admin", 3, expiry, false)
	})
	if got := k3sResult(t, c.Gather(ctx)); !got.Certs[0].Cert.NotAfter.Equal(expiry) {
		t.Fatalf("after a start: %s", got.Certs[0].Cert.NotAfter)
	}
	if snap := c.Gather(ctx); snap.TreeReads["rancher"] != 3 {
		t.Fatalf("tree reads %d, want 3", snap.TreeReads["rancher"])
	}
}

func TestTreeReadAgainAfterIntervalAndFailure(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c := newTestCollector(eng, 50*time.Millisecond)
	ctx := context.Background()
	c.Gather(ctx)
	time.Sleep(60 * time.Millisecond)
	c.Gather(ctx) // due: starts a read
	if reads := c.Gather(ctx).TreeReads["rancher"]; reads != 2 {
		t.Fatalf("%d tree reads after the interval, want 2", reads)
	}

	eng.Change(func(e *enginetest.Engine) { e.Fail("archive", errors.New("engine says no")) })
	time.Sleep(60 * time.Millisecond)
	if got := k3sResult(t, c.Gather(ctx)); got.Up || readerr.ReasonOf(got.Errors[0].Err) != readerr.DockerError {
		t.Fatalf("failing read: %+v", got)
	}
	// Not again before the backoff (here the 50 ms interval, under the 1 s of a first failure),
	// however many scrapes come.
	eng.Change(func(e *enginetest.Engine) { e.Fail("archive", nil) })
	calls := archives(eng)
	for i := 0; i < 20; i++ {
		if got := k3sResult(t, c.Gather(ctx)); got.Up {
			t.Fatalf("a failed read was retried at once: %+v", got)
		}
	}
	if n := archives(eng) - calls; n != 0 {
		t.Fatalf("%d archive calls before the backoff passed", n)
	}
	time.Sleep(60 * time.Millisecond)
	c.Gather(ctx) // due: starts the read
	if got := k3sResult(t, c.Gather(ctx)); !got.Up {
		t.Fatalf("a failed read is retried after its backoff: %+v", got)
	}
}

// TestBackoffDoublesToTheInterval: 1 s after a first failure, doubling up to the refresh
// interval.
func TestBackoffDoublesToTheInterval(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 50: 5 * time.Minute} {
		if got := backoff(n, 5*time.Minute); got != want {
			t.Errorf("after %d failures: %s, want %s", n, got, want)
		}
	}
	if got := backoff(3, 300*time.Millisecond); got != 300*time.Millisecond {
		t.Errorf("an interval under a second: %s", got)
	}
}

// TestAStartMakesAFailedSourceDueAtOnce: a failing source waits its backoff, but a start or
// restart of the container makes it due at once.
func TestAStartMakesAFailedSourceDueAtOnce(t *testing.T) {
	now := time.Now()
	b := readBasis{startedAt: now.Add(-time.Hour)}
	s := &sourceState{last: model.SourceResult{ReadAt: now}, basis: b, failures: 3, retryAt: now.Add(4 * time.Second)}
	if s.due(now.Add(time.Second), b, time.Hour) {
		t.Fatal("due inside the backoff")
	}
	if !s.due(now.Add(time.Second), readBasis{startedAt: b.startedAt, restarts: 1}, time.Hour) {
		t.Fatal("a restart did not make it due")
	}
	if !s.due(now.Add(5*time.Second), b, time.Hour) {
		t.Fatal("not due after the backoff")
	}
}

func TestOnlyTheScrapeThatStartsAReadWaits(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c := newTestCollector(eng, time.Hour)
	ctx := context.Background()
	old := k3sResult(t, c.Gather(ctx))

	hold := make(chan struct{})
	eng.Change(func(e *enginetest.Engine) {
		e.Hold(hold)
		c := e.Container("c1")
		c.Restarts++
		c.Files[adminCert] = certPEM(t, "system:admin", 9, time.Now().Add(2*time.Hour), false)
	})
	starter := make(chan model.SourceResult)
	go func() { starter <- k3sResult(t, c.Gather(ctx)) }()
	for archives(eng) < 2 {
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 50; i++ { // others do not wait
		if got := k3sResult(t, c.Gather(ctx)); got.Certs[0].Cert != old.Certs[0].Cert || !got.Up {
			t.Fatalf("a scrape that did not start the read reported %+v", got)
		}
	}
	select {
	case <-starter:
		t.Fatal("the starting scrape did not wait for its read")
	case <-time.After(50 * time.Millisecond):
	}
	close(hold)
	if got := <-starter; got.Certs[0].Cert == old.Certs[0].Cert {
		t.Fatal("the starting scrape did not report the new tree")
	}
	if n := archives(eng); n != 2 {
		t.Fatalf("%d archive calls, want one per read", n)
	}
}

func TestBudgetOverrunReportsLastGoodValues(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c := newTestCollector(eng, time.Hour)
	old := k3sResult(t, c.Gather(context.Background()))
	hold := make(chan struct{})
	eng.Change(func(e *enginetest.Engine) { e.Hold(hold); e.Container("c1").Restarts++ })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := k3sResult(t, c.Gather(ctx))
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the gather took %s past its budget", took)
	}
	if got.Up || len(got.Certs) != 1 || got.Certs[0].Cert != old.Certs[0].Cert || readerr.ReasonOf(got.Errors[len(got.Errors)-1].Err) != readerr.Timeout {
		t.Fatalf("overrun: %+v, want the last good values, down, with reason timeout", got)
	}
	close(hold)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if got := k3sResult(t, c.Gather(context.Background())); got.Up {
			break // the read a scrape gave up on still landed
		}
		if time.Now().After(deadline) {
			t.Fatal("the read never landed")
		}
	}
}

func TestFirstScrapesShareTheFirstRead(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	hold := make(chan struct{})
	eng.Change(func(e *enginetest.Engine) { e.Hold(hold) })
	c := newTestCollector(eng, time.Hour)
	results := make(chan model.SourceResult, 5)
	for i := 0; i < 5; i++ {
		go func() { results <- k3sResult(t, c.Gather(context.Background())) }()
	}
	time.Sleep(50 * time.Millisecond)
	close(hold)
	for i := 0; i < 5; i++ {
		if got := <-results; !got.Up || len(got.Certs) != 1 {
			t.Fatalf("with no earlier snapshot a scrape waits for the read: %+v", got)
		}
	}
	if n := archives(eng); n != 1 {
		t.Fatalf("%d archive calls for 5 first scrapes", n)
	}
}

// TestReadAgainAfterTheStartSettles: a read in the first moments after a start may see the
// tree before k3s renewed it, so it is made once more at each settle point: 1 s, 5 s and 30 s
// after the start — and not in between.
func TestReadAgainAfterTheStartSettles(t *testing.T) {
	st := &sourceState{}
	start := time.Now()
	b := readBasis{startedAt: start}
	st.basis = b
	for _, step := range []struct{ readAt, notDue, due time.Duration }{
		{100 * time.Millisecond, 900 * time.Millisecond, time.Second},
		{1200 * time.Millisecond, 4 * time.Second, 5 * time.Second},
		{5100 * time.Millisecond, 29 * time.Second, startSettle},
		{startSettle + time.Second, 59 * time.Minute, time.Hour + startSettle + time.Second}, // then only the interval
	} {
		st.last = model.SourceResult{Up: true, ReadAt: start.Add(step.readAt)}
		if st.due(start.Add(step.notDue), b, time.Hour) {
			t.Fatalf("read at +%s: due at +%s", step.readAt, step.notDue)
		}
		if !st.due(start.Add(step.due), b, time.Hour) {
			t.Fatalf("read at +%s: not due at +%s", step.readAt, step.due)
		}
	}
}

// TestReadErrorCountersStartWhereTheyCanCount: each source's read_errors_total starts at 0 for
// the reasons its reads can fail with, and has no series for the others.
func TestReadErrorCountersStartWhereTheyCanCount(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c := New(Config{Engine: eng, Docker: DockerConfig{Discover: true, Secrets: true}, FilePatterns: []string{t.TempDir()}}, promslog.NewNopLogger())
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.errs.counts)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	has := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			has[labels["source"]+"/"+labels["reason"]] = true
		}
	}
	for _, s := range []string{"k3s/not_regular", "k3s/unsafe_path", "k3s/docker_unreachable", "ui/ui_handshake", "secret/api_auth", "listener/api_unreachable", "file/not_regular", "file/timeout"} {
		if !has[s] {
			t.Errorf("no series for %s", s)
		}
	}
	for _, s := range []string{"k3s/api_auth", "k3s/ui_handshake", "ui/empty", "ui/api_auth", "secret/ui_handshake", "file/docker_unreachable", "file/api_auth"} {
		if has[s] {
			t.Errorf("a series for %s, which cannot happen", s)
		}
	}
}

// TestAStartRestartsTheBackoff: a source that failed many times and fails again after a start
// of its container waits the first backoff, not the long one it had reached.
func TestAStartRestartsTheBackoff(t *testing.T) {
	now := time.Now()
	old := readBasis{startedAt: now.Add(-time.Hour)}
	s := &sourceState{last: model.SourceResult{ReadAt: now.Add(-time.Minute)}, basis: old, failures: 8}
	failing := func(context.Context) model.SourceResult { return model.SourceResult{} }
	s.get(context.Background(), readBasis{startedAt: now}, time.Hour, failing, time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures != 1 || s.retryAt.Sub(s.last.ReadAt) != firstRetry {
		t.Fatalf("after a failed read of a new start: %d failures, retry in %s", s.failures, s.retryAt.Sub(s.last.ReadAt))
	}
}

// TestSourcesShareOneKubeconfigRead: the sources that read through the container's API server
// (secrets, settings) read its kubeconfig once between them in a round, not once each.
func TestSourcesShareOneKubeconfigRead(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	change(eng, func(c *enginetest.Container) {
		c.HostNetwork = true
		c.Files[rancher.KubeconfigFile] = []byte("not a kubeconfig")
	})
	c := New(Config{Engine: eng, Docker: DockerConfig{Discover: true, Secrets: true}}, promslog.NewNopLogger())
	snap := c.Gather(context.Background())
	failed := 0
	for _, r := range snap.Sources {
		if (r.Source == model.SourceSecret || r.Source == model.SourceSetting) && !r.Up {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d of the two API sources failed on a kubeconfig that does not parse: %+v", failed, snap.Sources)
	}
	if n := len(eng.Calls("archive c1 " + rancher.KubeconfigFile)); n != 1 {
		t.Fatalf("%d reads of the kubeconfig for two sources in one round, want one shared", n)
	}
}

// TestTrustIsVerifiedAgainOnlyWhenItsInputsChange: scrapes reuse the verification of the UI
// chain while the chain and the settings are the ones read before, for up to a minute.
func TestTrustIsVerifiedAgainOnlyWhenItsInputsChange(t *testing.T) {
	leaf, _ := certs.Parse("ui", certPEM(t, "cattle", 1, time.Now().Add(time.Hour), false))
	settings := &model.Settings{AgentTLSMode: "strict"}
	snap := func(taken time.Time, s *model.Settings) model.Snapshot {
		return model.Snapshot{Taken: taken, Sources: []model.SourceResult{
			{Container: "r", Source: model.SourceUI, Up: true, Chain: []*x509.Certificate{leaf}},
			{Container: "r", Source: model.SourceSetting, Up: true, Settings: s}}}
	}
	var m trustMemo
	start := time.Now()
	if _, ok := m.of(snap(start, settings), "r"); !ok {
		t.Fatal("no trust from read settings")
	}
	m.of(snap(start.Add(10*time.Second), settings), "r")
	if at := m.last["r"].at; !at.Equal(start) {
		t.Errorf("verified again at %s with the same inputs", at)
	}
	m.of(snap(start.Add(20*time.Second), &model.Settings{AgentTLSMode: "system-store"}), "r")
	if e := m.last["r"]; !e.at.Equal(start.Add(20*time.Second)) || e.trust.AgentTLSMode != "system-store" {
		t.Errorf("new settings not verified: %+v", e)
	}
	m.of(snap(start.Add(20*time.Second+trustReuse), m.last["r"].settings), "r")
	if at := m.last["r"].at; !at.Equal(start.Add(20*time.Second + trustReuse)) {
		t.Errorf("not verified again after %s", trustReuse)
	}
}
