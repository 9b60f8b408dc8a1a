// Command rancher-cert-exporter exports the expiry of every k3s and UI certificate of
// single-node Rancher servers to Prometheus, and checks them from the command line.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/check"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
)

const name = "rancher-cert-exporter"

func main() {
	app := kingpin.New(name, "Prometheus exporter for the k3s and UI certificates of single-node Rancher servers.")
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')

	var (
		containers = app.Flag("rancher.container", "Rancher container name or ID to read (repeatable); when given, only these.").Strings()
		discover   = app.Flag("rancher.discover", "Find containers of rancher/rancher images (any registry and tag). Turn off with --no-rancher.discover.").Default("true").Bool()
		uiURL      = app.Flag("rancher.url", "Probe the Rancher UI certificate at this URL (public hostname, SNI) instead of the container's published 443.").String()
		files      = app.Flag("files.path", "Host certificate file, directory (recursive) or glob (repeatable).").Strings()
		logLevel   = app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
		logFormat  = app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json")

		serveCmd    = app.Command("serve", "Serve /metrics (default).").Default()
		metricsPath = serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		webFlags    = kingpinflag.AddFlags(serveCmd, ":9793")

		checkCmd = app.Command("check", "Print every certificate with its status; exit 0/1/2/3 as Nagios does.")
		output   = checkCmd.Flag("output", "Output format: table or json.").Default("table").Enum("table", "json")
		warnDays = checkCmd.Flag("check.warn-days", "WARNING when a certificate expires within this many days.").Default("30").Int()
	)
	cmd := kingpin.MustParse(app.Parse(os.Args[1:]))
	logger := newLogger(*logLevel, *logFormat)

	cfg := collector.Config{
		Docker:       collector.DockerConfig{Containers: *containers, Discover: *discover, UIURL: *uiURL},
		FilePatterns: *files,
	}
	if err := validate(cfg); err != nil {
		level.Error(logger).Log("msg", "invalid flags", "err", err)
		os.Exit(2)
	}
	if *discover || len(*containers) > 0 {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			level.Error(logger).Log("msg", "Docker client", "err", err)
			os.Exit(1)
		}
		defer cli.Close()
		cfg.Client = cli
	}
	coll := collector.New(cfg, logger)

	switch cmd {
	case checkCmd.FullCommand():
		os.Exit(runCheck(coll, *output, time.Duration(*warnDays)*24*time.Hour))
	case serveCmd.FullCommand():
		if err := serve(coll, logger, *metricsPath, webFlags); err != nil {
			level.Error(logger).Log("msg", "serve", "err", err)
			os.Exit(1)
		}
	}
}

func validate(cfg collector.Config) error {
	if !cfg.Docker.Discover && len(cfg.Docker.Containers) == 0 && len(cfg.FilePatterns) == 0 {
		return fmt.Errorf("no source: give --rancher.container or --files.path, or leave --rancher.discover on")
	}
	if cfg.Docker.UIURL != "" && len(cfg.Docker.Containers) > 1 {
		return fmt.Errorf("--rancher.url names one UI, but %d containers are given", len(cfg.Docker.Containers))
	}
	return nil
}

func runCheck(coll *collector.Collector, output string, warn time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows := check.Rows(coll.Gather(ctx), time.Now(), warn)
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

func serve(coll *collector.Collector, logger log.Logger, metricsPath string, webFlags *web.FlagConfig) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(coll, versioncollector.NewCollector("rancher_cert_exporter"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.Handle(metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: stdLogger{logger}}))
	if metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        name,
			Description: "Expiry of the k3s and UI certificates of single-node Rancher servers",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: metricsPath, Text: "Metrics"}},
		})
		if err != nil {
			return err
		}
		mux.Handle("/", landing)
	}
	level.Info(logger).Log("msg", "starting", "version", version.Info())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return web.ListenAndServe(srv, webFlags, slogger(logger))
}
