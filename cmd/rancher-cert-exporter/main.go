// Command rancher-cert-exporter exports the expiry of every k3s and UI certificate of
// single-node Rancher servers to Prometheus, and checks them from the command line.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/check"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/web"
)

const name = "rancher-cert-exporter"

func main() { os.Exit(run(os.Args[1:])) }

// run parses the flags and runs a subcommand, returning the exit code: deferred clean-up
// runs before the process exits.
func run(args []string) int {
	cfg, err := parseConfig(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v; see --help\n", name, err)
		return 2
	}
	logger := promslog.New(cfg.log)
	var docker *client.Client
	if cfg.docker {
		if docker, err = client.New(client.FromEnv); err != nil {
			logger.Error("Docker client", "err", err)
			return 1
		}
		defer docker.Close()
		cfg.collector.Engine = docker
	}
	newRotator := func(m *rotation.Metrics) *rotation.Rotator {
		return rotation.New(rotation.NewEngine(docker, cfg.rotation.StopTimeout, cfg.rotation.Stall), cfg.rotation, logger, m)
	}
	switch cfg.command {
	case cmdRotate, cmdRestore:
		return runJob(cfg, newRotator(nil), logger)
	case cmdCheck:
		return runCheck(collector.New(cfg.collector, logger), cfg.output, cfg.limits)
	}
	return runServe(cfg, newRotator, logger)
}

// runJob runs the rotate or restore subcommand in the foreground, after finishing what a dead
// process left; a dry run writes nothing, so it finishes nothing either.
func runJob(cfg config, rot *rotation.Rotator, logger *slog.Logger) int {
	fg := foreground{rot: rot, grace: cfg.stopGrace}
	if cfg.command != cmdRotate || !cfg.rotate.DryRun {
		if _, err := rotation.CheckBackupDir(cfg.rotation.BackupDir); err != nil {
			logger.Error("rotation", "err", err)
			return 2
		}
		if !fg.recoverJobs() {
			return 1
		}
	}
	if cfg.command == cmdRotate {
		return fg.rotate(cfg.container, cfg.rotate)
	}
	return fg.restore(cfg.container, cfg.backup)
}

// runServe serves metrics, the status page and, when enabled, the rotation API and automatic
// rotation, until SIGTERM or SIGINT; running jobs get the stop grace to finish or roll back.
func runServe(cfg config, newRotator func(*rotation.Metrics) *rotation.Rotator, logger *slog.Logger) int {
	routes := web.Routes{Collector: collector.New(cfg.collector, logger), Registry: prometheus.NewRegistry(), MetricsPath: cfg.metricsPath,
		Page: web.PageOptions{Name: name, Version: version.Version, MetricsPath: cfg.metricsPath, RotationAPI: cfg.tokenFile != "", Thresholds: thresholds.Default}}
	jobs := rotation.NewJobs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	routes.Collector.Run(ctx)
	if cfg.docker {
		sched, api, err := serveRotation(ctx, routes.Registry, newRotator, jobs, routes.Collector, cfg.tokenFile, cfg.auto, logger)
		if err != nil {
			logger.Error("rotation", "err", err)
			return 2
		}
		if sched != nil {
			routes.Page.Auto = sched
		}
		if api != nil {
			routes.API = api
		}
	}
	err := web.Run(ctx, routes.Handler(logger), cfg.web, logger)
	if !jobs.Shutdown(cfg.stopGrace) {
		logger.Warn("a rotation or restore still runs at the end of the stop grace; the next start finishes it from its journal", "stop_grace", cfg.stopGrace)
	}
	if err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

func runCheck(coll *collector.Collector, output string, limits check.Limits) int {
	if err := limits.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		return check.ExitUnknown
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows := check.Rows(coll.Gather(ctx), time.Now(), limits)
	write := check.WriteTable
	if output == "json" {
		write = check.WriteJSON
	}
	if err := write(os.Stdout, rows); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return check.ExitUnknown
	}
	return check.ExitCode(rows)
}
