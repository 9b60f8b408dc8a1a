package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/autorotate"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

func TestDefaults(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	cfg, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.collector.Docker
	if cfg.command != cmdServe || !cfg.docker || !d.Discover || !d.Secrets || d.RefreshInterval != collector.DefaultRefreshInterval ||
		cfg.metricsPath != "/metrics" || cfg.tokenFile != "" || cfg.auto.Mode != autorotate.Off || cfg.auto.Before != 14*24*time.Hour {
		t.Errorf("serve defaults: %+v", cfg)
	}
	if cfg.rotation.BackupDir != "/var/lib/rancher-cert-exporter/backups" || cfg.rotation.SettleTime != 20*time.Second || cfg.rotation.Stall != nil ||
		cfg.stopGrace != 25*time.Second || !strings.Contains(cfg.rotation.Owner, "serve (pid ") {
		t.Errorf("rotation defaults: %+v", cfg.rotation)
	}
	if cfg, err = parseConfig([]string{"check"}); err != nil {
		t.Fatal(err)
	}
	if w := thresholds.Default; cfg.limits.Warn != time.Duration(w.Warning)*24*time.Hour || cfg.limits.Crit != time.Duration(w.Critical)*24*time.Hour || cfg.output != "table" {
		t.Errorf("check: limits %+v, output %s; want the alerts' thresholds and a table", cfg.limits, cfg.output)
	}
}

func TestFlagsBecomeSettings(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/rancher-cert-exporter:/other")
	t.Setenv(rotation.StallEnv, "verify")
	cfg, err := parseConfig([]string{"rotate", "--rancher.container", "rancher", "--strategy", "all-certs", "--dry-run", "--secret", "cattle-system/cattle-webhook-tls",
		"--rotation.settle-time", "3s", "--rotation.auto-before", "2w", "--rotation.window", "Sun 02:00-04:00 UTC", "--log.level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.command != cmdRotate || cfg.container != "rancher" || cfg.rotate.Strategy != rotation.AllCerts || !cfg.rotate.DryRun || len(cfg.rotate.Secrets) != 1 || cfg.rotate.Secrets[0] != "cattle-system/cattle-webhook-tls" ||
		cfg.rotation.SettleTime != 3*time.Second || cfg.auto.Before != 14*24*time.Hour || cfg.auto.Window.String() != "Sun 02:00-04:00 UTC" {
		t.Errorf("rotate: %+v", cfg)
	}
	if cfg.rotation.BackupDir != "/var/lib/rancher-cert-exporter/backups" {
		t.Errorf("backup directory under systemd: %s, want the first state directory's", cfg.rotation.BackupDir)
	}
	if cfg.rotation.Stall == nil {
		t.Error("the crash point of the environment is not configured")
	}
	cfg, err = parseConfig([]string{"check", "--rancher.container", "a", "--check.warn-days", "10", "--check.crit-days", "3", "--output", "json"})
	if err != nil || cfg.command != cmdCheck || cfg.output != "json" || cfg.limits.Warn != 10*24*time.Hour || cfg.limits.Crit != 3*24*time.Hour {
		t.Errorf("check: %+v %v", cfg, err)
	}
}

// TestStrategiesAreTheRotationPackages: --strategy takes exactly the strategies the rotation
// package offers.
func TestStrategiesAreTheRotationPackages(t *testing.T) {
	for _, s := range rotation.Strategies {
		if cfg, err := parseConfig([]string{"rotate", "--rancher.container", "r", "--strategy", string(s)}); err != nil || cfg.rotate.Strategy != s {
			t.Errorf("--strategy %s: %v", s, err)
		}
	}
	if _, err := parseConfig([]string{"rotate", "--rancher.container", "r", "--strategy", "everything"}); !errors.Is(err, errUsage) {
		t.Errorf("an unknown strategy: %v", err)
	}
}

func TestMistakesAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--no-rancher.discover"}, "no source"},
		{[]string{"--rancher.url", "https://r", "--rancher.container", "a", "--rancher.container", "b"}, "names one UI"},
		{[]string{"--no-rancher.discover", "--files.path", "/x", "--rotation.token-file", "/t"}, "need the Docker engine"},
		{[]string{"--no-rancher.discover", "--files.path", "/x", "--rotation.auto", "on"}, "need the Docker engine"},
		{[]string{"rotate"}, "exactly one --rancher.container"},
		{[]string{"rotate", "--rancher.container", "../x"}, "../x"},
		{[]string{"rotate", "--rancher.container", "r", "--secret", "cattle-system/tls-rancher"}, "agents pin"},
		{[]string{"rotate", "--rancher.container", "r", "--secret", "default/mine"}, "cattle-system/cattle-webhook-tls, cattle-system/tls-rancher-internal, cattle-system/serving-cert"},
		{[]string{"--rotation.window", "Sunday"}, "Sunday"},
		{[]string{"--rotation.auto", "maybe"}, "maybe"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		if _, err := parseConfig(tc.args); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.says)
		}
	}
}

// TestTokenFileFromSystemdCredentials: the packaged unit passes the token as a credential, and
// /etc/default names it by $CREDENTIALS_DIRECTORY, which only the exporter can expand there.
func TestTokenFileFromSystemdCredentials(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/rancher-cert-exporter.service")
	for _, arg := range []string{"$CREDENTIALS_DIRECTORY/rancher-cert-exporter.token", "${CREDENTIALS_DIRECTORY}/rancher-cert-exporter.token"} {
		cfg, err := parseConfig([]string{"--rotation.token-file", arg})
		if want := "/run/credentials/rancher-cert-exporter.service/rancher-cert-exporter.token"; err != nil || cfg.tokenFile != want {
			t.Errorf("%s: %q, %v; want %s", arg, cfg.tokenFile, err, want)
		}
	}
	if cfg, err := parseConfig([]string{"--rotation.token-file", "/etc/token"}); err != nil || cfg.tokenFile != "/etc/token" {
		t.Errorf("a plain path: %q, %v", cfg.tokenFile, err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := parseConfig([]string{"--rotation.token-file", "$CREDENTIALS_DIRECTORY/rancher-cert-exporter.token"}); err == nil || !strings.Contains(err.Error(), "LoadCredential") {
		t.Errorf("outside systemd: %v, want an error that says where the credential comes from", err)
	}
}
