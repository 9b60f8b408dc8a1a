package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// k3sCandidates lists the certificate files of a copied tree (see copyTree) by their paths in
// the container: the k3s tree and management-state/tls beside it.
func k3sCandidates(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	data := filepath.Dir(root)
	for _, f := range treeFiles(t, data) {
		if strings.HasSuffix(f, ".crt") || strings.HasSuffix(f, "dynamic-cert.json") {
			files["/var/lib/rancher/"+f] = filepath.Join(data, f)
		}
	}
	return files
}

// assertTreeMatchesOpenSSL checks that every certificate file of the container has one
// cert_not_after_seconds series equal, to the second, to what openssl reads from the copy,
// and that there is no other.
func assertTreeMatchesOpenSSL(t *testing.T, e *exporter, sim *harness.Sim) {
	t.Helper()
	root := copyTree(t, sim.Name)
	files := k3sCandidates(t, root)
	want := releaseOf(t, sim.Profile).certFiles()
	if releaseOf(t, sim.Profile).legacy {
		want += len(legacyFiles)
	}
	mfs := e.scrape(t)
	got := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "k3s"})
	if len(got) != len(files) || len(files) != want {
		t.Fatalf("%d k3s series for %d certificate files in the container, want %d", len(got), len(files), want)
	}
	for _, s := range got {
		local, ok := files[s.labels["path"]]
		if !ok {
			t.Errorf("series for %s, which the container does not have", s.labels["path"])
			continue
		}
		if strings.HasSuffix(local, ".json") {
			local = dynamicCert(t, local)
		}
		_, na := opensslDates(t, local)
		if int64(s.value) != na.Unix() {
			t.Errorf("%s: exported %d, openssl says %d (%s)", s.labels["path"], int64(s.value), na.Unix(), na)
		}
		wantCA := strconv.FormatBool(strings.Contains(openssl(t, "x509", "-noout", "-ext", "basicConstraints", "-in", local), "CA:TRUE"))
		if s.labels["ca"] != wantCA {
			t.Errorf("%s: ca=%s", s.labels["path"], s.labels["ca"])
		}
	}
}

func TestExporterMatchesOpenSSLAndServedUI(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 100, UIDays: 250})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	e := startExporter(t, nil) // discovery finds the rancher/rancher:*-sim container
	assertTreeMatchesOpenSSL(t, e, sim)

	mfs := e.scrape(t)
	served := servedCert(t, sim.UIPort)
	ui := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "ui"})
	if len(ui) != 1 {
		t.Fatalf("%d ui series, want 1", len(ui))
	}
	if int64(ui[0].value) != served.NotAfter.Unix() || ui[0].labels["serial_number"] != served.SerialNumber.String() ||
		ui[0].labels["path"] != "https://127.0.0.1:"+itoa(sim.UIPort) || ui[0].labels["issuer_cn"] != "cattle-ca" {
		t.Fatalf("ui series %v = %v, served certificate expires %d serial %s", ui[0].labels, ui[0].value, served.NotAfter.Unix(), served.SerialNumber)
	}
	for _, src := range []string{"k3s", "ui"} {
		if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": src}); v != 1 {
			t.Errorf("source_up{%s} = %v", src, v)
		}
	}
	if v := value(t, mfs, "rancher_cert_exporter_container_state", map[string]string{"container": sim.Name, "state": "running"}); v != 1 {
		t.Errorf("state running = %v", v)
	}
}

func TestExporterReadsCrashLoopingContainer(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -3, CrashLoop: true})
	waitRestarts(t, sim, 2)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	assertTreeMatchesOpenSSL(t, e, sim)
	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_container_restarts", map[string]string{"container": sim.Name}); v < 2 {
		t.Fatalf("container_restarts = %v, want the crash loop visible", v)
	}
	expired := 0
	for _, s := range series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "ca": "false"}) {
		if s.value < float64(time.Now().Unix()) {
			expired++
		}
	}
	if want := len(releaseOf(t, sim.Profile).leaves()) + 1; expired < want {
		t.Fatalf("%d expired leaves exported, want every k3s leaf and the serving certificate (%d)", expired, want)
	}
}

// TestACrashLoopIsSeenWithoutScrapes: the restart count of a crash-looping server moves with
// each restart on the status page, with no scrape at all and no engine call from the page views;
// the page and /metrics agree; each restart costs a handful of engine calls.
func TestACrashLoopIsSeenWithoutScrapes(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: -3, CrashLoop: true})
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--rancher.container", sim.Name)
	e.log.waitFor(t, "following the Docker engine's events", 10*time.Second)
	restartsOnPage := func() int {
		m := regexp.MustCompile(`(\d+) restarts`).FindStringSubmatch(e.page(t))
		if m == nil {
			t.Fatal("no restart count on the page")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	first, calls := restartsOnPage(), len(proxy.requests())
	start := time.Now()
	seen := map[int]bool{}
	for time.Since(start) < 20*time.Second && len(seen) < 3 {
		if n := restartsOnPage(); n > first {
			seen[n] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Fatalf("the page saw the restart count move to %v from %d in 20 s, want three restarts", seen, first)
	}
	final := restartsOnPage()
	restarts := final - first
	if v := value(t, e.scrape(t), "rancher_cert_exporter_container_restarts", map[string]string{"container": sim.Name}); int(v) < final {
		t.Errorf("/metrics says %v restarts, the page %d", v, final)
	}
	inspections := proxy.count("GET", "/containers/") - proxy.count("/archive")
	t.Logf("%d restarts seen on the page without a scrape; %d engine calls since, %d of them to look at containers", restarts, len(proxy.requests())-calls, inspections)
	if per := float64(inspections) / float64(restarts); per > 6 {
		t.Errorf("%.1f container lookups per restart, want a handful", per)
	}
}

func waitRestarts(t testing.TB, sim *harness.Sim, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		in, err := engine.Client.ContainerInspect(context.Background(), sim.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if in.Container.RestartCount >= n {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s restarted fewer than %d times in 60s", sim.Name, n)
}

func TestExporterReadsStoppedContainer(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 40})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	docker(t, "stop", "-t", "10", sim.Name)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	assertTreeMatchesOpenSSL(t, e, sim)
	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_container_state", map[string]string{"container": sim.Name, "state": "exited"}); v != 1 {
		t.Errorf("state exited = %v", v)
	}
	if ui := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "ui"}); len(ui) != 0 {
		t.Errorf("ui series for a stopped container: %v", ui)
	}
}

func TestExporterMissingContainerAndClosedUIPort(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	closed := freePort(t)
	e := startExporter(t, nil, "--rancher.container", "rce-no-such-container", "--files.path", "/nonexistent/*.crt")
	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": "rce-no-such-container", "source": "k3s"}); v != 0 {
		t.Errorf("missing container up = %v", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "k3s", "reason": "container_not_found"}); v < 1 {
		t.Errorf("container_not_found counted %v times", v)
	}
	if !strings.Contains(e.log.String(), "rce-no-such-container") {
		t.Errorf("no log line names the missing container:\n%s", e.log)
	}

	e2 := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.url", "https://127.0.0.1:"+itoa(closed))
	mfs = e2.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "ui"}); v != 0 {
		t.Errorf("closed UI port: ui up = %v", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "ui", "reason": "ui_unreachable"}); v < 1 {
		t.Errorf("ui_unreachable counted %v times", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "k3s"}); v != 1 {
		t.Errorf("k3s source down because the UI is: %v", v)
	}
}
