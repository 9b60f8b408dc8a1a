package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/status"
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
			Page: status.Options{Name: "rancher-cert-exporter", MetricsPath: "/metrics", Thresholds: thresholds.Default}}
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
