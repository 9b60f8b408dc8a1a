package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// TestTreeReadOnlyOnChange counts the archive calls the engine gets: none for scrapes of a
// container that did not start since the last read, however many and however concurrent, and
// the restarted container's new tree in the first scrape after its start.
func TestTreeReadOnlyOnChange(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V275, LeafDays: 30})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--rancher.container", sim.Name, "--no-rancher.secrets")
	first := e.scrape(t)
	leaf := map[string]string{"container": sim.Name, "source": "k3s", "path": "/var/lib/rancher/k3s/server/tls/client-admin.crt"}
	before := value(t, first, "cert_not_after_seconds", leaf)
	calls := proxy.archives.Load()

	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Get(e.url + "/metrics"); err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 || proxy.archives.Load() != calls {
		t.Fatalf("50 concurrent scrapes: %d failed, %d archive calls", failed.Load(), proxy.archives.Load()-calls)
	}
	if v := value(t, e.scrape(t), "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name}); v != 1 {
		t.Fatalf("tree_reads_total = %v after one read", v)
	}

	restart(t, sim) // k3s renews the leaves (30 days left) at this start
	waitCount(t, sim, simReady, 2)
	started := time.Now()
	mfs := e.scrape(t)
	t.Logf("the restarted container's tree showed in the first scrape after the start, %s after it was ready", time.Since(started).Round(time.Millisecond))
	if after := value(t, mfs, "cert_not_after_seconds", leaf); after <= before {
		t.Fatalf("first scrape after the start: client-admin.crt expires %v, as before (%v)", after, before)
	}
	if v := value(t, mfs, "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name}); v != 2 {
		t.Fatalf("tree_reads_total = %v after the start, want 2", v)
	}
	if age := value(t, mfs, "rancher_cert_exporter_snapshot_age_seconds", map[string]string{"container": sim.Name, "source": "k3s"}); age < 0 || age > 5 {
		t.Fatalf("snapshot age %v after a fresh read", age)
	}
}

// TestScrapeBudget: with a hung API server and Prometheus's 2s scrape timeout, the answer comes
// within the timeout, the secret source down with reason timeout, everything else there.
func TestScrapeBudget(t *testing.T) {
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
