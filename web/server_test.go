package web

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

type fakeAPI struct{}

func (fakeAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rotations", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "[]") })
}

// TestRoutes: the metrics, the status page at /, and the rotation API only when it is given.
func TestRoutes(t *testing.T) {
	for _, withAPI := range []bool{false, true} {
		r := Routes{Collector: collector.New(collector.Config{FilePatterns: []string{t.TempDir()}}, promslog.NewNopLogger()),
			Registry: prometheus.NewRegistry(), MetricsPath: "/metrics",
			Page: PageOptions{Name: "rancher-cert-exporter", MetricsPath: "/metrics", Thresholds: thresholds.Default}}
		if withAPI {
			r.API = fakeAPI{}
		}
		srv := httptest.NewServer(r.Handler(promslog.NewNopLogger()))
		get := func(path string) (int, string) {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "rancher_cert_exporter_build_info") || !strings.Contains(body, "go_goroutines") {
			t.Errorf("/metrics: %d", code)
		}
		if code, body := get("/"); code != 200 || !strings.Contains(body, `href="/metrics"`) {
			t.Errorf("/: %d", code)
		}
		if code, _ := get("/api/v1/rotations"); (code == 200) != withAPI {
			t.Errorf("API %v: /api/v1/rotations answers %d", withAPI, code)
		}
		if code, _ := get("/nothing"); code != 404 {
			t.Errorf("/nothing: %d", code)
		}
		srv.Close()
	}
}

// TestIdleConnectionsAreClosed: a keep-alive connection that sends nothing after a scrape is
// closed by the server within its idle timeout, not held open for ever.
func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	go srv.Serve(ln)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server did not keep the connection alive")
	}
	idleSince := time.Now()
	conn.SetReadDeadline(idleSince.Add(idleTimeout + 10*time.Second))
	_, err = r.ReadByte()
	held := time.Since(idleSince)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("an idle connection still open after %s", held.Round(time.Second))
	case err != io.EOF:
		t.Fatalf("reading an idle connection: %v", err)
	case held < idleTimeout-time.Second:
		t.Fatalf("closed after %s, before the idle timeout", held)
	}
	t.Logf("an idle keep-alive connection closed after %s", held.Round(100*time.Millisecond))
}
