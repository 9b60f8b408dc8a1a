// Command rancher-cert-exporter exports the expiry of every k3s and UI certificate of
// single-node Rancher servers to Prometheus, and checks them from the command line.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/autorotate"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/check"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/status"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

const name = "rancher-cert-exporter"

func main() { os.Exit(run(os.Args[1:])) }

// run parses the flags and runs a subcommand, returning the exit code: deferred clean-up
// runs before the process exits.
func run(args []string) int {
	app := kingpin.New(name, "Prometheus exporter for the k3s and UI certificates of single-node Rancher servers.")
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')

	var (
		containers = app.Flag("rancher.container", "Rancher container name or ID to read (repeatable); when given, only these.").Strings()
		discover   = app.Flag("rancher.discover", "Find containers of rancher/rancher images (any registry and tag). Turn off with --no-rancher.discover.").Default("true").Bool()
		secrets    = app.Flag("rancher.secrets", "Read the certificates kept as secrets in each running container's embedded cluster, through its own API server (read only). Turn off with --no-rancher.secrets.").Default("true").Bool()
		uiURL      = app.Flag("rancher.url", "Probe the Rancher UI certificate at this URL (public hostname, SNI) instead of the container's published 443.").String()
		refresh    = app.Flag("rancher.refresh-interval", "Read a container's certificate tree and secrets again after this long even when it has not started since.").Default(collector.DefaultRefreshInterval.String()).Duration()
		uiRefresh  = app.Flag("rancher.ui-refresh-interval", "Probe the UI certificate again after this long even when the container has not started since.").Default(collector.DefaultUIRefreshInterval.String()).Duration()
		files      = app.Flag("files.path", "Host certificate file, directory (recursive) or glob (repeatable).").Strings()
		rescan     = app.Flag("files.rescan-interval", "Scan the host files whole this often besides inotify (for file systems that do not notify).").Default(collector.DefaultRescanInterval.String()).Duration()

		backupDir   = app.Flag("rotation.backup-dir", "Directory for certificate backups and rotation journals (created 0700); under the systemd unit's state directory ($STATE_DIRECTORY) when run from it.").Default(defaultBackupDir()).String()
		settleTime  = app.Flag("rotation.settle-time", "How long a restarted container must run without restarts or x509 errors.").Default("20s").Duration()
		stopTimeout = app.Flag("rotation.stop-timeout", "Grace period of docker stop.").Default("30s").Duration()
		jobTimeout  = app.Flag("rotation.timeout", "Time limit of a whole rotation or restore.").Default("10m").Duration()
		backupKeep  = app.Flag("rotation.backup-keep", "Verified backups kept per container after a successful rotation; the oldest beyond are pruned, never one a running or failed job names (0 keeps all).").Default("10").Int()
		autoMode    = app.Flag("rotation.auto", "Rotate the k3s certificates automatically before they expire: off, plan (say what would be done and when, do nothing) or on.").Default(autorotate.Off).Enum(autorotate.Off, autorotate.Plan, autorotate.On)
		autoBefore  = durationFlag(app, "rotation.auto-before", "Rotate automatically what expires within this long (e.g. 14d).", "14d")
		autoWindow  = app.Flag("rotation.window", `When automatic rotations may start: "[DAYS] HH:MM-HH:MM [ZONE]", e.g. "Sun 02:00-04:00 Europe/Berlin" or "Mon-Fri 22:00-02:00"; any time when empty. Expired certificates are rotated at once.`).Default("").String()
		autoBackoff = durationFlag(app, "rotation.auto-backoff", "After a failed automatic rotation of a container, no new attempt for this long.", "24h")
		stopGrace   = app.Flag("rotation.stop-grace", "On SIGTERM or SIGINT, how long a running rotation or restore may take to finish or roll back before the process exits (keep it under the stop timeout of the exporter's container).").Default("25s").Duration()

		serveCmd    = app.Command("serve", "Serve /metrics (default).").Default()
		metricsPath = serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		webFlags    = kingpinflag.AddFlags(serveCmd, ":9793")
		tokenFile   = serveCmd.Flag("rotation.token-file", "Enable the rotation API with the bearer token in this file (off when unset).").String()

		checkCmd = app.Command("check", "Print every certificate with its status; exit 0/1/2/3 as Nagios does.")
		output   = checkCmd.Flag("output", "Output format: table or json.").Default("table").Enum("table", "json")
		warnDays = checkCmd.Flag("check.warn-days", "WARNING (exit 1) when a certificate expires within this many days (the alerts' warning threshold).").Default(strconv.Itoa(thresholds.Default.Warning)).Int()
		critDays = checkCmd.Flag("check.crit-days", "CRITICAL (exit 2) when a certificate expires within this many days (the alerts' critical threshold); at most --check.warn-days.").Default(strconv.Itoa(thresholds.Default.Critical)).Int()

		rotateCmd = app.Command("rotate", "Rotate the k3s certificates of one container (--rancher.container): backup, stop, remove, start, verify.")
		strategy  = rotateCmd.Flag("strategy", "auto (restart where the release renews on start and that suffices, else leaf), leaf (leaves and listener cache), all-certs (every *.crt, CAs too) or restart (restart only).").Default("auto").Enum("auto", "leaf", "all-certs", "restart")
		dryRun    = rotateCmd.Flag("dry-run", "Only check and print the plan.").Bool()

		restoreCmd = app.Command("restore", "Put a backup's files back into one container (--rancher.container).")
		backupFile = restoreCmd.Flag("backup", "Backup archive written by a rotation.").Required().ExistingFile()
	)
	logConfig := &promslog.Config{Writer: os.Stderr}
	promslogflag.AddFlags(app, logConfig)
	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v; see --help\n", name, err)
		return 2
	}
	logger := promslog.New(logConfig)

	cfg := collector.Config{
		Docker: collector.DockerConfig{Containers: *containers, Discover: *discover, UIURL: *uiURL, Secrets: *secrets,
			RefreshInterval: *refresh, UIRefreshInterval: *uiRefresh},
		FilePatterns:       *files,
		FileRescanInterval: *rescan,
	}
	if err := validate(cfg); err != nil {
		logger.Error("invalid flags", "err", err)
		return 2
	}
	window, err := autorotate.ParseWindow(*autoWindow)
	if err != nil {
		logger.Error("invalid flags", "err", err)
		return 2
	}
	autoCfg := autorotate.Config{Mode: *autoMode, Before: time.Duration(*autoBefore), Window: window, Backoff: time.Duration(*autoBackoff)}
	var docker *client.Client
	if *discover || len(*containers) > 0 {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			logger.Error("Docker client", "err", err)
			return 1
		}
		defer cli.Close()
		docker = cli
		cfg.Engine = cli
	}
	rotCfg := rotation.Config{BackupDir: *backupDir, SettleTime: *settleTime, StopTimeout: *stopTimeout, Timeout: *jobTimeout,
		BackupKeep: *backupKeep, Owner: owner(cmd)}
	newRotator := func(m *rotation.Metrics) *rotation.Rotator {
		return rotation.New(rotation.NewEngine(docker, *stopTimeout), rotCfg, logger, m)
	}

	switch cmd {
	case rotateCmd.FullCommand(), restoreCmd.FullCommand():
		if len(*containers) != 1 || docker == nil {
			logger.Error("give exactly one --rancher.container")
			return 2
		}
		if err := rotation.CheckContainerName((*containers)[0]); err != nil {
			logger.Error("invalid flags", "err", err)
			return 2
		}
		fg := foreground{rot: newRotator(nil), grace: *stopGrace}
		if !(cmd == rotateCmd.FullCommand() && *dryRun) { // a dry run writes nothing
			if _, err := rotation.CheckBackupDir(*backupDir); err != nil {
				logger.Error("rotation", "err", err)
				return 2
			}
			if !fg.recoverJobs() {
				return 1
			}
		}
		if cmd == rotateCmd.FullCommand() {
			return fg.rotate((*containers)[0], rotation.Strategy(*strategy), *dryRun)
		}
		return fg.restore((*containers)[0], *backupFile)
	}
	coll := collector.New(cfg, logger)

	if cmd == checkCmd.FullCommand() {
		return runCheck(coll, *output, check.Limits{Warn: time.Duration(*warnDays) * 24 * time.Hour, Crit: time.Duration(*critDays) * 24 * time.Hour})
	}
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	jobs := rotation.NewJobs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var sched *autorotate.Scheduler
	if docker != nil {
		if sched, err = serveRotation(ctx, reg, mux, newRotator, jobs, coll, *tokenFile, autoCfg, logger); err != nil {
			logger.Error("rotation", "err", err)
			return 2
		}
	} else if *tokenFile != "" || autoCfg.Mode != autorotate.Off {
		logger.Error("the rotation API and automatic rotation need the Docker engine: give --rancher.container or leave --rancher.discover on")
		return 2
	}
	err = serve(ctx, reg, mux, coll, logger, *metricsPath, status.Options{Name: name, Version: version.Version,
		MetricsPath: *metricsPath, RotationAPI: *tokenFile != "", Thresholds: thresholds.Default, Auto: sched}, webFlags)
	if !jobs.Shutdown(*stopGrace) {
		logger.Warn("a rotation or restore still runs at the end of the stop grace; the next start finishes it from its journal", "stop_grace", *stopGrace)
	}
	if err != nil {
		logger.Error("serve", "err", err)
		return 1
	}
	return 0
}

// durationFlag is a duration flag that takes days and weeks too (14d, 2w), as Prometheus does.
func durationFlag(app *kingpin.Application, name, help, def string) *model.Duration {
	d := new(model.Duration)
	app.Flag(name, help).Default(def).SetValue(d)
	return d
}

// owner names this process in journals and locks, for whoever finds its job or lock.
func owner(cmd string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s %s (pid %d on %s, started %s)", name, cmd, os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
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

// defaultBackupDir is in the state directory systemd gives the unit, else in /var/lib.
func defaultBackupDir() string {
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		first, _, _ := strings.Cut(dirs, ":")
		return filepath.Join(first, "backups")
	}
	return "/var/lib/rancher-cert-exporter/backups"
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
