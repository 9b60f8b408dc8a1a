package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	dto "github.com/prometheus/client_model/go"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// TestTreeReadOnlyOnChange counts the engine calls: none for scrapes of a container that did
// not change, however many and however concurrent — the engine's events say when it does — and
// after a restart the new state and the renewed tree within 2 s, read in the background.
func TestTreeReadOnlyOnChange(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 30})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--rancher.container", sim.Name, "--no-rancher.secrets")
	e.log.waitFor(t, "following the Docker engine's events", 10*time.Second)
	first := e.scrape(t)
	leaf := map[string]string{"container": sim.Name, "source": "k3s", "path": "/var/lib/rancher/k3s/server/tls/client-admin.crt"}
	before := value(t, first, "cert_not_after_seconds", leaf)
	if v := value(t, first, "rancher_cert_exporter_engine_events_up", nil); v != 1 {
		t.Fatalf("engine_events_up = %v", v)
	}
	// Past the reads that follow a start (1 s and 5 s after it), and well before the last (30 s).
	time.Sleep(time.Until(startedAt(t, sim).Add(6 * time.Second)))
	e.scrape(t)
	calls, archives := len(proxy.requests()), proxy.archives.Load()

	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, path := range []string{"/metrics", "/"} {
				if resp, err := http.Get(e.url + path); err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 || len(proxy.requests()) != calls || proxy.archives.Load() != archives {
		t.Fatalf("50 concurrent scrapes and page views: %d failed, %d engine calls: %v", failed.Load(), len(proxy.requests())-calls, proxy.requests()[calls:])
	}
	reads := value(t, e.scrape(t), "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name})

	docker(t, "restart", "-t", "10", sim.Name) // k3s renews the leaves (30 days left) at this start
	restarted := time.Now()
	var mfs map[string]*dto.MetricFamily
	for {
		mfs = e.scrape(t)
		if value(t, mfs, "cert_not_after_seconds", leaf) > before {
			break
		}
		if time.Since(restarted) > 2*time.Second {
			t.Fatalf("2 s after docker restart the scrape still shows the old tree")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after docker restart a scrape showed the renewed tree in %s", time.Since(restarted).Round(time.Millisecond))
	if v := value(t, mfs, "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name}); v <= reads {
		t.Fatalf("tree_reads_total = %v after the restart, want more than %v", v, reads)
	}
	if page := e.page(t); !strings.Contains(page, "running") {
		t.Error("the page does not show the container running")
	}
	if n := proxy.count("/containers/json"); n > 2 {
		t.Errorf("the containers were listed %d times: a restart is inspected alone", n)
	}
}

// startedAt is when the container last started, as the engine says.
func startedAt(t *testing.T, sim *harness.Sim) time.Time {
	t.Helper()
	in, err := engine.Client.ContainerInspect(context.Background(), sim.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, in.Container.State.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestScrapeBudget: with a hung API server and Prometheus's 2s scrape timeout, the answer comes
// within the timeout, the secret source down with reason timeout, everything else there.
func TestScrapeBudget(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V2123, LeafDays: 50, Env: []string{"SIM_API_STALL=60s"}})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	for i := 0; i < 3; i++ {
		text, took := e.timedScrape(t, "2")
		t.Logf("scrape %d with a hung API server and a 2s timeout: %s", i, took.Round(time.Millisecond))
		if took >= 2*time.Second {
			t.Fatalf("answered after %s, past the 2s scrape timeout", took)
		}
		for _, want := range []string{
			`rancher_cert_exporter_source_up{container="` + sim.Name + `",source="secret"} 0`,
			`rancher_cert_exporter_source_up{container="` + sim.Name + `",source="k3s"} 1`,
			`rancher_cert_exporter_read_errors_total{reason="timeout",source="secret"}`,
		} {
			if !strings.Contains(text, want) {
				t.Fatalf("scrape lacks %s", want)
			}
		}
	}
}

// TestHostFileChangeShowsAtOnce: a certificate written on the host is in the next scrape
// after inotify reports it — without a rescan.
func TestHostFileChangeShowsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pem := openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "/dev/null", "-subj", "/CN=first", "-days", "30")
	os.WriteFile(filepath.Join(dir, "first.crt"), []byte(pem), 0o644)
	e := startExporter(t, nil, "--no-rancher.discover", "--files.path", dir, "--files.rescan-interval", "1h")
	if n := len(series(e.scrape(t), "cert_not_after_seconds", map[string]string{"source": "file"})); n != 1 {
		t.Fatalf("%d file series", n)
	}
	written := time.Now()
	os.WriteFile(filepath.Join(dir, "second.crt"), []byte(pem), 0o644)
	for len(series(e.scrape(t), "cert_not_after_seconds", map[string]string{"source": "file"})) != 2 {
		if time.Since(written) > 5*time.Second {
			t.Fatal("a new host certificate did not show within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("a new host certificate showed %s after it was written", time.Since(written).Round(time.Millisecond))
}
