package collector

import (
	"net/http/httptest"

	"fmt"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"path/filepath"
	"testing"
	"time"
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
		if res := newFileSource([]string{dir}).gather(); len(res.Certs) != 10000 {
			b.Fatalf("%d certificates", len(res.Certs))
		}
	}
}

func BenchmarkFileSource10kWarm(b *testing.B) {
	dir := writeCerts(b, 10000)
	s := newFileSource([]string{dir})
	s.gather()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := s.gather(); len(res.Certs) != 10000 {
			b.Fatalf("%d certificates", len(res.Certs))
		}
	}
}

// BenchmarkScrape10kWarm is a whole warm /metrics request over 10,000 host files.
func BenchmarkScrape10kWarm(b *testing.B) {
	dir := writeCerts(b, 10000)
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(Config{FilePatterns: []string{dir}}, log.NewNopLogger()))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
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
