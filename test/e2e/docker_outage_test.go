package e2e

import (
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// socketProxy forwards a unix socket to the engine's, so a test can take "Docker" away from
// the exporter and bring it back without stopping the engine the other tests use.
type socketProxy struct {
	path, target string
	mu           sync.Mutex
	l            net.Listener
	conns        []net.Conn
}

func (p *socketProxy) up(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

// down closes the socket and every open connection, as a stopped daemon does.
func (p *socketProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestExporterSurvivesDockerOutage(t *testing.T) {
	if !strings.HasPrefix(engine.Host, "unix://") {
		t.Skip("engine is not on a unix socket")
	}
	sim := engine.StartSim(t, harness.SimOptions{})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	proxy := &socketProxy{path: filepath.Join(t.TempDir(), "docker.sock"), target: strings.TrimPrefix(engine.Host, "unix://")}
	proxy.up(t)
	e := startExporter(t, []string{"DOCKER_HOST=unix://" + proxy.path}, "--files.path", "../../testdata/k3s-v0.8.1-tls/server/tls")

	mfs := e.scrape(t)
	before := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "k3s"}))
	if before < 20 || value(t, mfs, "rancher_cert_exporter_docker_up", nil) != 1 {
		t.Fatalf("before the outage: %d k3s series", before)
	}

	proxy.down()
	mfs = e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_docker_up", nil); v != 0 {
		t.Errorf("docker_up = %v during the outage", v)
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
	mfs = e.scrape(t)
	if n := len(series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "k3s"})); n != before {
		t.Errorf("after recovery: %d k3s series, want %d", n, before)
	}
	if v := value(t, mfs, "rancher_cert_exporter_source_up", map[string]string{"container": sim.Name, "source": "k3s"}); v != 1 {
		t.Errorf("k3s source up = %v after recovery", v)
	}
	log := e.log.String()
	if strings.Count(log, "Docker engine failing") != 1 || strings.Count(log, "Docker engine answers again") != 1 {
		t.Errorf("want one log line when the outage starts and one when it ends:\n%s", log)
	}
}
