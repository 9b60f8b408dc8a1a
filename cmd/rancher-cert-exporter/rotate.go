package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
)

// enableRotation serves the rotation API; it stays off unless a token file is given.
func enableRotation(reg prometheus.Registerer, mux *http.ServeMux, cli *client.Client, cfg rotation.Config, tokenFile string, logger *slog.Logger) error {
	if cli == nil {
		return fmt.Errorf("the rotation API needs the Docker engine: give --rancher.container or leave --rancher.discover on")
	}
	token, loose, err := rotation.ReadToken(tokenFile)
	if err != nil {
		return err
	}
	if loose {
		logger.Warn("token file is readable by group or others; chmod 600 it", "file", tokenFile)
	}
	rotation.NewAPI(rotation.New(cli, cfg, logger, rotation.NewMetrics(reg)), token).Register(mux)
	logger.Info("rotation API enabled", "backup_dir", cfg.BackupDir)
	return nil
}

func runRotate(rot *rotation.Rotator, name string, s rotation.Strategy, dryRun bool) int {
	return runJob(rot, name, func(r *rotation.Rotator, c rancher.Container) *rotation.Job { return r.NewRotation(c, s, dryRun) })
}

func runRestore(rot *rotation.Rotator, name, backup string) int {
	return runJob(rot, name, func(r *rotation.Rotator, c rancher.Container) *rotation.Job { return r.NewRestore(c, backup) })
}

// runJob runs a job in the foreground, printing each step as it starts and ends, then the
// report as JSON. Exit 0 when it succeeded.
func runJob(rot *rotation.Rotator, name string, newJob func(*rotation.Rotator, rancher.Container) *rotation.Job) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c, err := rot.Lookup(ctx, name)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep := newJob(rot, c).Run(context.Background(), func(s rotation.Step) {
		if s.Outcome == rotation.StepRunning {
			fmt.Fprintf(os.Stderr, "%s %-10s ...\n", s.Start.Local().Format("15:04:05"), s.Name)
			return
		}
		fmt.Fprintf(os.Stderr, "%s %-10s %s (%s) %s\n", s.End.Local().Format("15:04:05"), s.Name, s.Outcome,
			s.End.Sub(s.Start).Round(time.Millisecond), s.Detail)
	})
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	if rep.State != rotation.Succeeded {
		fmt.Fprintf(os.Stderr, "%s failed: %s\n", rep.Kind, rep.Error)
		if rep.Backup != "" {
			fmt.Fprintf(os.Stderr, "backup kept: %s\n", rep.Backup)
		}
		return 1
	}
	return 0
}
