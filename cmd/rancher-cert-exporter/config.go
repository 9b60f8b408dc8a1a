package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/autorotate"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/check"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

// Subcommands.
const (
	cmdServe   = "serve"
	cmdCheck   = "check"
	cmdRotate  = "rotate"
	cmdRestore = "restore"
)

// config is what the flags say, turned into each package's settings.
type config struct {
	command   string
	collector collector.Config // its Engine is set once the Docker client is made
	docker    bool             // read containers: named ones, or discovery
	rotation  rotation.Config
	stopGrace time.Duration
	auto      autorotate.Config
	log       *promslog.Config

	// serve
	metricsPath string
	web         *web.FlagConfig
	tokenFile   string

	// check
	output string
	limits check.Limits

	// rotate and restore: one container
	container string
	rotate    rotation.Request
	backup    string
}

// errUsage is a mistake in the flags (exit 2).
var errUsage = errors.New("invalid flags")

// parseConfig parses the command line into a config.
func parseConfig(args []string) (config, error) {
	app := kingpin.New(name, "Prometheus exporter for the k3s and UI certificates of single-node Rancher servers.")
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')
	cfg := config{log: &promslog.Config{Writer: os.Stderr}}
	var (
		containers = app.Flag("rancher.container", "Rancher container name or ID to read (repeatable); when given, only these.").Strings()
		discover   = app.Flag("rancher.discover", "Find containers of rancher/rancher images (any registry and tag). Turn off with --no-rancher.discover.").Default("true").Bool()
		secrets    = app.Flag("rancher.secrets", "Read the certificates kept as secrets in each running container's embedded cluster, and Rancher's settings, through its own API server (read only). Turn off with --no-rancher.secrets.").Default("true").Bool()
		downstream = app.Flag("rancher.downstream", "Read the clusters each running server manages — their RKE1 certificates' expiry and whether their agents are connected — through its own API server (read only). Turn off with --no-rancher.downstream.").Default("true").Bool()
		uiURL      = app.Flag("rancher.url", "Probe the Rancher UI certificate at this URL (public hostname, SNI) instead of the container's published 443.").String()
		refresh    = app.Flag("rancher.refresh-interval", "Read a container's certificate tree and secrets again after this long even when it has not started since.").Default(collector.DefaultRefreshInterval.String()).Duration()
		uiRefresh  = app.Flag("rancher.ui-refresh-interval", "Probe the UI certificate again after this long even when the container has not started since.").Default(collector.DefaultUIRefreshInterval.String()).Duration()
		resync     = app.Flag("docker.resync-interval", "While the Docker engine's events are followed, list and inspect the containers whole this often (an event names each change; this catches what one could miss).").Default(collector.DefaultResyncInterval.String()).Duration()
		files      = app.Flag("files.path", "Host certificate file, directory (recursive) or glob (repeatable).").Strings()
		rescan     = app.Flag("files.rescan-interval", "Scan the host files whole this often besides inotify (for file systems that do not notify).").Default(collector.DefaultRescanInterval.String()).Duration()

		backupDir   = app.Flag("rotation.backup-dir", "Directory for certificate backups and rotation journals (created 0700); under the systemd unit's state directory ($STATE_DIRECTORY) when run from it.").Default(defaultBackupDir()).String()
		settleTime  = app.Flag("rotation.settle-time", "How long a restarted container must run without restarts or x509 errors.").Default("20s").Duration()
		stopTimeout = app.Flag("rotation.stop-timeout", "Grace period of docker stop.").Default("30s").Duration()
		jobTimeout  = app.Flag("rotation.timeout", "Time limit of a whole rotation or restore.").Default("10m").Duration()
		ownerWait   = app.Flag("rotation.owner-wait", "How long a rotation waits after the start for the owners of the in-cluster certificates it deleted to issue them anew (rancher-webhook applies its configuration 15 s after its own start).").Default("5m").Duration()
		backupKeep  = app.Flag("rotation.backup-keep", "Verified backups kept per container after a successful rotation; the oldest beyond are pruned, never one a running or failed job names (0 keeps all).").Default("10").Int()
		autoMode    = app.Flag("rotation.auto", "Rotate the k3s certificates automatically before they expire: off, plan (say what would be done and when, do nothing) or on.").Default(autorotate.Off).Enum(autorotate.Off, autorotate.Plan, autorotate.On)
		autoBefore  = durationFlag(app, "rotation.auto-before", "Rotate automatically what expires within this long (e.g. 14d).", "14d")
		autoWindow  = app.Flag("rotation.window", `When automatic rotations may start: "[DAYS] HH:MM-HH:MM [ZONE]", e.g. "Sun 02:00-04:00 Europe/Berlin" or "Mon-Fri 22:00-02:00"; any time when empty. Expired certificates are rotated at once.`).Default("").String()
		autoBackoff = durationFlag(app, "rotation.auto-backoff", "After a failed automatic rotation of a container, no new attempt for this long.", "24h")
		stopGrace   = app.Flag("rotation.stop-grace", "On SIGTERM or SIGINT, how long a running rotation or restore may take to finish or roll back before the process exits (keep it under the stop timeout of the exporter's container).").Default("25s").Duration()

		serveCmd    = app.Command(cmdServe, "Serve /metrics (default).").Default()
		metricsPath = serveCmd.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		webFlags    = kingpinflag.AddFlags(serveCmd, ":9793")
		tokenFile   = serveCmd.Flag("rotation.token-file", "Enable the rotation API with the bearer token in this file (off when unset); a path that starts with $CREDENTIALS_DIRECTORY/ names a credential systemd passes the service (LoadCredential=).").String()

		checkCmd = app.Command(cmdCheck, "Print every certificate with its status; exit 0/1/2/3 as Nagios does.")
		output   = checkCmd.Flag("output", "Output format: table or json.").Default("table").Enum("table", "json")
		warnDays = checkCmd.Flag("check.warn-days", "WARNING (exit 1) when a certificate expires within this many days (the alerts' warning threshold).").Default(strconv.Itoa(thresholds.Default.Warning)).Int()
		critDays = checkCmd.Flag("check.crit-days", "CRITICAL (exit 2) when a certificate expires within this many days (the alerts' critical threshold); at most --check.warn-days.").Default(strconv.Itoa(thresholds.Default.Critical)).Int()

		rotateCmd = app.Command(cmdRotate, "Rotate the k3s certificates of one container (--rancher.container): backup, stop, remove, start, verify.")
		strategy  = rotateCmd.Flag("strategy", "auto (restart where the release renews on start and that suffices, else leaf; all-certs on 2.3), leaf (leaves and listener cache), all-certs (every *.crt, CAs too) or restart (restart only).").Default(string(rotation.Auto)).Enum(strategyNames()...)
		dryRun    = rotateCmd.Flag("dry-run", "Only check and print the plan; nothing is written.").Bool()
		secretsTo = rotateCmd.Flag("secret", "Also renew this certificate of Rancher's cluster, namespace/name, by deleting it for its owner to issue anew (repeatable): "+strings.Join(rancher.RotatableSecrets(), ", ")+". Strategy auto plans those due that their owner will not renew in time.").PlaceHolder("NAMESPACE/NAME").Strings()

		restoreCmd = app.Command(cmdRestore, "Put a backup's files back into one container (--rancher.container).")
		backupFile = restoreCmd.Flag("backup", "Backup archive written by a rotation.").Required().ExistingFile()
	)
	promslogflag.AddFlags(app, cfg.log)
	command, err := app.Parse(args)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg.command = command

	cfg.collector = collector.Config{
		Docker: collector.DockerConfig{Containers: *containers, Discover: *discover, UIURL: *uiURL, Secrets: *secrets,
			RefreshInterval: *refresh, UIRefreshInterval: *uiRefresh, ResyncInterval: *resync, Downstream: *downstream},
		FilePatterns:       *files,
		FileRescanInterval: *rescan,
	}
	cfg.docker = *discover || len(*containers) > 0
	cfg.rotation = rotation.Config{BackupDir: *backupDir, SettleTime: *settleTime, StopTimeout: *stopTimeout, Timeout: *jobTimeout,
		BackupKeep: *backupKeep, OwnerWait: *ownerWait, Owner: owner(command), Stall: rotation.StallAt(os.Getenv(rotation.StallEnv))}
	cfg.stopGrace = *stopGrace
	window, err := autorotate.ParseWindow(*autoWindow)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	cfg.auto = autorotate.Config{Mode: *autoMode, Before: time.Duration(*autoBefore), Window: window, Backoff: time.Duration(*autoBackoff)}
	cfg.metricsPath, cfg.web = *metricsPath, webFlags
	if cfg.tokenFile, err = credentialPath(*tokenFile); err != nil {
		return cfg, fmt.Errorf("%w: --rotation.token-file: %w", errUsage, err)
	}
	cfg.output = *output
	cfg.limits = check.Limits{Warn: time.Duration(*warnDays) * 24 * time.Hour, Crit: time.Duration(*critDays) * 24 * time.Hour}
	cfg.rotate = rotation.Request{Strategy: rotation.Strategy(*strategy), Secrets: *secretsTo, DryRun: *dryRun}
	cfg.backup = *backupFile
	for _, key := range *secretsTo {
		if err := rancher.CheckRotatable(key); err != nil {
			return cfg, fmt.Errorf("%w: --secret: %w", errUsage, err)
		}
	}
	return cfg, cfg.validate()
}

// validate refuses combinations of flags that cannot work.
func (cfg *config) validate() error {
	d := cfg.collector.Docker
	switch {
	case !cfg.docker && len(cfg.collector.FilePatterns) == 0:
		return fmt.Errorf("%w: no source: give --rancher.container or --files.path, or leave --rancher.discover on", errUsage)
	case d.UIURL != "" && len(d.Containers) > 1:
		return fmt.Errorf("%w: --rancher.url names one UI, but %d containers are given", errUsage, len(d.Containers))
	case !cfg.docker && (cfg.tokenFile != "" || cfg.auto.Mode != autorotate.Off):
		return fmt.Errorf("%w: the rotation API and automatic rotation need the Docker engine: give --rancher.container or leave --rancher.discover on", errUsage)
	}
	if cfg.command == cmdRotate || cfg.command == cmdRestore {
		if len(d.Containers) != 1 {
			return fmt.Errorf("%w: give exactly one --rancher.container", errUsage)
		}
		if err := rotation.CheckContainerName(d.Containers[0]); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		cfg.container = d.Containers[0]
	}
	return nil
}

// strategyNames are the values of --strategy: the rotation package's list.
func strategyNames() []string {
	var out []string
	for _, s := range rotation.Strategies {
		out = append(out, string(s))
	}
	return out
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

// defaultBackupDir is in the state directory systemd gives the unit, else in /var/lib.
func defaultBackupDir() string {
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" {
		first, _, _ := strings.Cut(dirs, ":")
		return filepath.Join(first, "backups")
	}
	return "/var/lib/rancher-cert-exporter/backups"
}

// credentialPath resolves a path that starts with $CREDENTIALS_DIRECTORY/ (or the braced form)
// against the directory systemd gives a unit's credentials: the unit's $ARGS cannot expand it,
// since systemd does not expand a variable inside another's value.
func credentialPath(p string) (string, error) {
	for _, prefix := range []string{"$CREDENTIALS_DIRECTORY/", "${CREDENTIALS_DIRECTORY}/"} {
		name, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("%s names systemd's credentials directory, but CREDENTIALS_DIRECTORY is not set: systemd sets it for a unit with LoadCredential= (the packaged unit loads /etc/credstore/rancher-cert-exporter.token)", p)
		}
		return filepath.Join(dir, name), nil
	}
	return p, nil
}
