package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/enginetest"
)

// running is a collector over the fake that follows its events, as serve runs it, and its log.
func running(t *testing.T, eng *enginetest.Engine) (*Collector, *syncLog) {
	t.Helper()
	log := &syncLog{}
	c := New(Config{Engine: eng, Docker: DockerConfig{Discover: true, RefreshInterval: time.Hour}}, slog.New(slog.NewTextHandler(log, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Run(ctx)
	return c, log
}

// syncLog is a log written by the collector's goroutines and read by the test.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
	}
}

func following(c *Collector) bool {
	s := c.Current(context.Background())
	return s.EventsUp != nil && *s.EventsUp
}

// engineCalls counts the calls that look at containers: listings and inspections.
func engineCalls(eng *enginetest.Engine) int {
	return len(eng.Calls("list")) + len(eng.Calls("inspect"))
}

// TestEventsBoundTheEngineCalls: while the events are followed, scrapes and page views make no
// engine call at all; a restart the events tell of is inspected alone and its certificates read
// again in the background, so the next scrape, and the page without any scrape, show it.
func TestEventsBoundTheEngineCalls(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c, _ := running(t, eng)
	eventually(t, "the events followed", func() bool { return following(c) })
	first := k3sResult(t, c.Gather(context.Background()))
	calls, reads := engineCalls(eng), archives(eng)
	for range 100 {
		c.Gather(context.Background())
		c.Current(context.Background())
	}
	if n := engineCalls(eng) - calls; n != 0 {
		t.Fatalf("%d listings and inspections for 100 scrapes and 100 page views at rest, want 0", n)
	}
	if n := archives(eng) - reads; n != 0 {
		t.Fatalf("%d tree reads at rest", n)
	}

	lists := len(eng.Calls("list"))
	var c1 *enginetest.Container
	eng.Change(func(e *enginetest.Engine) {
		c1 = e.Container("c1")
		c1.Restarts++
		c1.StartedAt = time.Now()
		c1.Files[adminCert] = certPEM(t, "system:admin", 2, time.Now().Add(48*time.Hour), false)
	})
	eng.Emit(events.ActionDie, c1)
	eng.Emit(events.ActionStart, c1)
	eventually(t, "the restart and its certificates on the page, without a scrape", func() bool {
		s := c.Current(context.Background())
		return len(s.Containers) == 1 && s.Containers[0].RestartCount == 1 && k3sResult(t, s).Certs[0].Cert != first.Certs[0].Cert
	})
	if n := engineCalls(eng) - calls; n > 2 {
		t.Errorf("%d engine calls for one restart, want a handful", n)
	}
	if n := len(eng.Calls("list")) - lists; n != 0 {
		t.Errorf("a restart of a watched container listed the containers %d times", n)
	}
	if got := k3sResult(t, c.Gather(context.Background())); got.Certs[0].Cert == first.Certs[0].Cert {
		t.Error("a scrape after the restart reports the old tree")
	}
}

// TestACrashLoopIsCountedWithoutScrapes: each restart of a crash loop shows in the restart count
// the page reads, with no scrape; and the page and a scrape agree.
func TestACrashLoopIsCountedWithoutScrapes(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c, _ := running(t, eng)
	eventually(t, "the events followed", func() bool { return following(c) })
	for i := 1; i <= 5; i++ {
		var c1 *enginetest.Container
		eng.Change(func(e *enginetest.Engine) {
			c1 = e.Container("c1")
			c1.State = container.StateRestarting
			c1.Restarts = i
			c1.StartedAt = time.Now()
		})
		eng.Emit(events.ActionDie, c1)
		eng.Emit(events.ActionStart, c1)
		eventually(t, "restart count on the page", func() bool {
			s := c.Current(context.Background())
			return len(s.Containers) == 1 && s.Containers[0].RestartCount == i
		})
	}
	if s := c.Gather(context.Background()); s.Containers[0].RestartCount != 5 || s.Containers[0].State != container.StateRestarting {
		t.Errorf("the scrape says %d restarts, %s", s.Containers[0].RestartCount, s.Containers[0].State)
	}
}

// TestABrokenEventStreamFallsBackToPolling: when the stream breaks the exporter says so once and
// every scrape inspects the containers as before; when it is back, scrapes stop calling the
// engine again.
func TestABrokenEventStreamFallsBackToPolling(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c, log := running(t, eng)
	eventually(t, "the events followed", func() bool { return following(c) })

	eng.Change(func(e *enginetest.Engine) { e.Fail("events", errors.New("connection refused")) })
	eng.Break(errors.New("unexpected EOF"))
	eventually(t, "the fallback", func() bool { return !following(c) })
	before := len(eng.Calls("inspect"))
	for range 3 {
		if s := c.Gather(context.Background()); s.EventsUp == nil || *s.EventsUp {
			t.Fatal("a scrape says the events are followed")
		}
	}
	if n := len(eng.Calls("inspect")) - before; n < 3 {
		t.Errorf("%d inspections for 3 scrapes while the stream is broken, want one each", n)
	}
	time.Sleep(2500 * time.Millisecond) // resubscriptions fail: 1 s, 2 s
	if n := strings.Count(log.String(), "not following the Docker engine's events"); n != 1 {
		t.Errorf("the broken stream logged %d times, want once:\n%s", n, log)
	}

	eng.Change(func(e *enginetest.Engine) { e.Fail("events", nil) })
	eventually(t, "the events followed again", func() bool { return following(c) })
	if !strings.Contains(log.String(), "following the Docker engine's events") {
		t.Errorf("the recovery is not logged:\n%s", log)
	}
	calls := engineCalls(eng)
	for range 10 {
		c.Gather(context.Background())
	}
	if n := engineCalls(eng) - calls; n != 0 {
		t.Errorf("%d engine calls for 10 scrapes once the stream is back", n)
	}
}

// TestEventsOfOtherContainersAreIgnored: what happens to containers the exporter does not read
// (another image, a rotation's helper) makes no inspection; a new Rancher container takes one
// round and is read.
func TestEventsOfOtherContainersAreIgnored(t *testing.T) {
	eng := newFakeEngine(t, time.Now().Add(time.Hour))
	c, _ := running(t, eng)
	eventually(t, "the events followed", func() bool { return following(c) })
	calls := engineCalls(eng)
	eng.Emit(events.ActionStart, &enginetest.Container{ID: "nginx1", Name: "web", Image: "nginx:1.27"})
	helper := &enginetest.Container{ID: "h1", Name: "rce-helper", Image: "rancher/rancher:v2.4.8"}
	eng.Emit(events.ActionStart, helper) // no helper label in the attributes here: a Rancher image, one round
	time.Sleep(200 * time.Millisecond)
	if n := engineCalls(eng) - calls; n > 2 { // the helper's round: one listing, one inspection
		t.Errorf("%d engine calls for an nginx event and a Rancher one", n)
	}
	eng.Change(func(e *enginetest.Engine) {
		e.Add(&enginetest.Container{ID: "c2", Name: "rancher2", Image: "rancher/rancher:v2.4.8",
			Env: []string{"CATTLE_SERVER_VERSION=v2.4.8"}, State: container.StateRunning, StartedAt: time.Now(),
			Files: map[string][]byte{adminCert: certPEM(t, "system:admin", 3, time.Now().Add(time.Hour), false)}})
	})
	eng.Emit(events.ActionCreate, &enginetest.Container{ID: "c2", Name: "rancher2", Image: "rancher/rancher:v2.4.8"})
	eventually(t, "the new container watched", func() bool { return len(c.Current(context.Background()).Containers) == 2 })
}
