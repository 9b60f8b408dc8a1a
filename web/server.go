// Package web is the exporter's HTTP side in one place: its routes — /metrics, the status page
// at / (page.go), the rotation API when enabled — and the server that serves them
// (exporter-toolkit: TLS and basic auth from --web.config.file).
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	toolkit "github.com/prometheus/exporter-toolkit/web"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
)

// Routes is what the server serves.
type Routes struct {
	Collector   *collector.Collector
	Registry    *prometheus.Registry // what /metrics gathers live beside the certificates
	MetricsPath string
	Page        PageOptions
	// API registers the rotation API on the mux; nil when it is off.
	API interface{ Register(mux *http.ServeMux) }
}

// Handler is the routes' mux. Build information and the Go and process metrics join the
// registry.
func (r Routes) Handler(logger *slog.Logger) http.Handler {
	r.Registry.MustRegister(versioncollector.NewCollector(metrics.Namespace),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle(r.MetricsPath, exposition.New(r.Collector).Handler(r.Registry, logger))
	if r.MetricsPath != "/" {
		mux.Handle("GET /{$}", pageHandler(r.Collector, r.Page))
	}
	if r.API != nil {
		r.API.Register(mux)
	}
	return mux
}

// Run serves h until the server fails or ctx ends, then shuts it down.
func Run(ctx context.Context, h http.Handler, flags *toolkit.FlagConfig, logger *slog.Logger) error {
	logger.Info("starting", "version", version.Info())
	srv := newServer(h)
	failed := make(chan error, 1)
	go func() { failed <- toolkit.ListenAndServe(srv, flags, logger) }()
	select {
	case err := <-failed:
		return err
	case <-ctx.Done():
	}
	logger.Info("stopping")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// Timeouts of the server: a client gets 10 s to send its headers and 30 s for its whole request
// (a rotation body is at most 64 KiB), and a keep-alive connection is closed after 30 s without
// a request — Prometheus's client opens a new one for its next scrape — so idle connections
// cannot pile up.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 30 * time.Second
)

func newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
}
