package collector

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
)

// writeCerts writes n certificate files in 100 directories.
func writeCerts(b *testing.B, n int) string {
	dir := b.TempDir()
	data := certPEM(b, "bench", 1, time.Now().Add(24*time.Hour), false)
	for i := 0; i < n; i++ {
		write(b, filepath.Join(dir, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("c%05d.crt", i)), data)
	}
	return dir
}

func BenchmarkFileSource10kCold(b *testing.B) {
	dir := writeCerts(b, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, _ := newFileSource([]string{dir}).scan(); len(res.Certs) != 10000 {
			b.Fatalf("%d certificates", len(res.Certs))
		}
	}
}

func BenchmarkFileSource10kWarm(b *testing.B) {
	dir := writeCerts(b, 10000)
	s := newFileSource([]string{dir})
	s.scan()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, _ := s.scan(); len(res.Certs) != 10000 {
			b.Fatalf("%d certificates", len(res.Certs))
		}
	}
}

// BenchmarkScrape10kWarm is a whole warm /metrics request over 10,000 host files.
func BenchmarkScrape10kWarm(b *testing.B) {
	dir := writeCerts(b, 10000)
	h := exposition.New(New(Config{FilePatterns: []string{dir}}, promslog.NewNopLogger())).Handler(prometheus.NewRegistry(), promslog.NewNopLogger())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkScrapeOneContainer is a warm scrape of one container (fake engine), with the Go,
// process and build collectors the binary registers, compressed as Prometheus asks.
func BenchmarkScrapeOneContainer(b *testing.B) {
	eng := newFakeEngine(b, time.Now().Add(time.Hour))
	c := New(Config{Engine: eng, Docker: DockerConfig{Discover: true}}, promslog.NewNopLogger())
	live := prometheus.NewRegistry()
	live.MustRegister(versioncollector.NewCollector("rancher_cert_exporter"), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := exposition.New(c).Handler(live, promslog.NewNopLogger())
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(httptest.NewRecorder(), req)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(discard{}, req)
		}
	})
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
