package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// engineProxy serves the Docker API on its own unix socket and forwards it to the engine, so a
// test can count the exporter's calls and take "Docker" away and bring it back without
// stopping the engine the other tests use.
type engineProxy struct {
	path     string
	proxy    *httputil.ReverseProxy
	srv      *http.Server
	archives atomic.Int64 // archive calls
	bytes    atomic.Int64 // bytes the engine sent for them

	mu    sync.Mutex
	calls []string // every request, as "METHOD /path?query"
}

// requests returns the requests the proxy saw so far.
func (p *engineProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// count counts the requests so far whose "METHOD /path?query" (the query unescaped) contains
// every one of parts.
func (p *engineProxy) count(parts ...string) int {
	n := 0
	for _, c := range p.requests() {
		if u, err := url.QueryUnescape(c); err == nil {
			c = u
		}
		all := true
		for _, part := range parts {
			all = all && strings.Contains(c, part)
		}
		if all {
			n++
		}
	}
	return n
}

// countingWriter counts the body bytes of a response.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return w.ResponseWriter.Write(b)
}

func (w countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func newEngineProxy(t testing.TB) *engineProxy {
	t.Helper()
	if !strings.HasPrefix(engine.Host, "unix://") {
		t.Skip("engine is not on a unix socket")
	}
	target := strings.TrimPrefix(engine.Host, "unix://")
	p := &engineProxy{path: filepath.Join(t.TempDir(), "docker.sock")}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", target)
		}},
	}
	p.up(t)
	t.Cleanup(p.down)
	return p
}

func (p *engineProxy) up(t testing.TB) {
	t.Helper()
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.calls = append(p.calls, r.Method+" "+r.URL.RequestURI())
		p.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/archive") {
			p.archives.Add(1)
			w = countingWriter{w, &p.bytes}
		}
		p.proxy.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
}

// down closes the socket and every open connection, as a stopped daemon does.
func (p *engineProxy) down() { p.srv.Close() }

func (p *engineProxy) env() []string { return []string{"DOCKER_HOST=unix://" + p.path} }

func TestExporterSurvivesDockerOutage(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	proxy := newEngineProxy(t)
	e := startExporter(t, proxy.env(), "--files.path", "../../testdata/k3s-v0.8.1-tls/server/tls")

	mfs := e.scrape(t)
	before := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "k3s"}))
	if before < releaseOf(t, sim.Profile).certFiles() || value(t, mfs, "rancher_cert_exporter_docker_up", nil) != 1 {
		t.Fatalf("before the outage: %d k3s series", before)
	}

	e.log.waitFor(t, "following the Docker engine's events", 10*time.Second)
	proxy.down()
	e.log.waitFor(t, "not following the Docker engine's events", 5*time.Second)
	mfs = e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_docker_up", nil); v != 0 {
		t.Errorf("docker_up = %v during the outage", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_engine_events_up", nil); v != 0 {
		t.Errorf("engine_events_up = %v during the outage", v)
	}
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "k3s"}); v != 0 {
		t.Errorf("k3s source of %s up = %v during the outage", sim.Name, v)
	}
	if n := len(series(mfs, "cert_not_after_seconds", map[string]string{"source": "file"})); n < 10 {
		t.Errorf("file source lost during the Docker outage: %d series", n)
	}
	if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "k3s", "reason": "docker_unreachable"}); v < 1 {
		t.Errorf("docker_unreachable counted %v times", v)
	}
	e.scrape(t) // a second failing scrape logs nothing new

	proxy.up(t)
	mfs = e.scrape(t) // inspects, as every scrape does until the events are followed again
	if n := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "k3s"})); n != before {
		t.Errorf("after recovery: %d k3s series, want %d", n, before)
	}
	for deadline := time.Now().Add(40 * time.Second); value(t, e.scrape(t), "rancher_cert_exporter_engine_events_up", nil) != 1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the events are not followed again 40 s after the engine came back")
		}
	}
	calls := len(proxy.requests())
	for range 20 {
		e.scrape(t)
	}
	if n := len(proxy.requests()) - calls; n != 0 {
		t.Errorf("%d engine calls for 20 scrapes once the events are followed again", n)
	}
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "k3s"}); v != 1 {
		t.Errorf("k3s source up = %v after recovery", v)
	}
	log := e.log.String()
	if strings.Count(log, "Docker engine failing") != 1 || strings.Count(log, "Docker engine answers again") != 1 {
		t.Errorf("want one log line when the outage starts and one when it ends:\n%s", log)
	}
	if strings.Count(log, "not following the Docker engine's events") != 1 || strings.Count(log, "msg=\"following the Docker engine's events") != 2 {
		t.Errorf("want the broken event stream logged once, and following it twice (at start and after):\n%s", log)
	}
}

// hungEngine is a Docker socket that accepts connections and never answers.
func hungEngine(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hung.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return path
}

// TestHungEngineIsReportedDown: an engine that accepts and never answers is down, not up, for
// each watched container with the reason timeout, and a scrape does not queue behind the
// hanging call: it answers at once with what it knows.
func TestHungEngineIsReportedDown(t *testing.T) {
	t.Parallel()
	e := startExporter(t, []string{"DOCKER_HOST=unix://" + hungEngine(t)}, "--rancher.container", "rancher-a", "--rancher.container", "rancher-b")
	// startExporter's first request waited out its budget on the hanging inspection.
	for i := range 3 {
		body, took := e.timedScrape(t, "5")
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if v := value(t, mfs, "rancher_cert_exporter_docker_up", nil); v != 0 {
			t.Errorf("scrape %d: docker_up = %v on a hung engine", i, v)
		}
		for _, name := range []string{"rancher-a", "rancher-b"} {
			if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": name, "source": "k3s"}); v != 0 {
				t.Errorf("scrape %d: source_up of %s = %v", i, name, v)
			}
		}
		if v := value(t, mfs, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "k3s", "reason": "timeout"}); v < 1 {
			t.Errorf("scrape %d: timeouts counted %v", i, v)
		}
		if took > 2*time.Second {
			t.Errorf("scrape %d took %s: it waited for the hanging call (budget 5 s)", i, took)
		}
	}
	page := e.page(t)
	if !strings.Contains(page, "timeout") || !strings.Contains(page, "did not answer within the scrape") {
		t.Errorf("the status page does not say the engine hangs:\n%s", page)
	}
	if !strings.Contains(e.log.String(), "Docker engine failing") {
		t.Errorf("the hang is not logged:\n%s", e.log)
	}
}
