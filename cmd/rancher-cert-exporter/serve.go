package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/metrics"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/status"
)

// serve serves the metrics and the status page (and whatever mux already has) until the
// server fails or ctx ends.
func serve(ctx context.Context, reg *prometheus.Registry, mux *http.ServeMux, coll *collector.Collector, logger *slog.Logger, metricsPath string, page status.Options, webFlags *web.FlagConfig) error {
	reg.MustRegister(versioncollector.NewCollector(metrics.Namespace),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux.Handle(metricsPath, coll.Handler(reg, logger))
	if metricsPath != "/" {
		mux.Handle("GET /{$}", status.Handler(coll, page))
	}
	logger.Info("starting", "version", version.Info())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	failed := make(chan error, 1)
	go func() { failed <- web.ListenAndServe(srv, webFlags, logger) }()
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
