package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// hammer scrapes with n concurrent clients until d has passed.
func hammer(t *testing.T, e *exporter, n int, d time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
				req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
}

// TestFailingSourceIsReadWithBackoff: a server whose kubeconfig is gone fails its secret and
// setting sources at every read. Under 20 concurrent scrapers for 8 s the engine, counted
// through a proxy, is asked for the kubeconfig on the backoff's schedule (1, 2, 4 s…), not per
// scrape; a restart of the container, which writes the kubeconfig again, is read at once.
func TestFailingSourceIsReadWithBackoff(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V24})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	docker(t, "exec", sim.Name, "rm", "/etc/rancher/k3s/k3s.yaml")
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--rancher.container", sim.Name)
	if v := value(t, e.scrape(t), "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "secret"}); v != 0 {
		t.Fatalf("secret source up = %v without a kubeconfig", v)
	}
	before := proxy.count("/archive", "/etc/rancher/k3s/k3s.yaml")
	inspections := proxy.count("/json")
	hammer(t, e, 20, 8*time.Second)
	reads := proxy.count("/archive", "/etc/rancher/k3s/k3s.yaml") - before
	t.Logf("8 s of 20 scrapers: %d kubeconfig reads, %d inspections", reads, proxy.count("/json")-inspections)
	// Two sources read the kubeconfig (secret, setting; one read shared when they are due
	// together), each failing first at 0 s, then read again 1, 2 and 4 s after each failure: at
	// most 3 more reads each in 8 s, not one per scrape.
	if reads < 1 || reads > 6 {
		t.Errorf("%d reads of the missing kubeconfig in 8 s, want the backoff's 1 to 6", reads)
	}
	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "secret", "reason": "not_found"}); v < 2 || v > 5 {
		t.Errorf("not_found counted %v times", v)
	}

	restart(t, sim) // the start writes the kubeconfig again
	waitCount(t, sim, simReady, 2)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if value(t, e.scrape(t), "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "secret"}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the secrets of the restarted container were not read at once:\n%s", e.log)
		}
	}
}
