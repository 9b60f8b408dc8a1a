package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/autorotate"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rotation"
)

// serveRotation sets up what serve does with rotations. Only an exporter that may rotate — with
// a token file or --rotation.auto=on — writes anything: it checks its backup directory, finishes
// the jobs dead processes left and removes their helper containers, serves the API (with a token
// file) and rotates automatically (on). Plan mode and a metrics-only exporter only read the
// journals. It returns the scheduler (nil when automatic rotation is off) and the API (nil
// without a token file).
func serveRotation(ctx context.Context, reg prometheus.Registerer, newRotator func(*rotation.Metrics) *rotation.Rotator,
	jobs *rotation.Jobs, coll *collector.Collector, tokenFile string, auto autorotate.Config, logger *slog.Logger) (*autorotate.Scheduler, *rotation.API, error) {
	var metrics *rotation.Metrics
	if tokenFile != "" || auto.Mode != autorotate.Off {
		metrics = rotation.NewMetrics(reg)
	}
	rot := newRotator(metrics)
	rot.LoadLastFromJournals()
	if tokenFile != "" || auto.Mode == autorotate.On {
		free, err := rotation.CheckBackupDir(rot.BackupDir())
		if err != nil {
			return nil, nil, err
		}
		logger.Info("backup directory ready", "dir", rot.BackupDir(), "free_bytes", free)
		go func() {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			rot.Resume(ctx, jobs, true)
		}()
	}
	var api *rotation.API
	if tokenFile != "" {
		var err error
		if api, err = rotationAPI(rot, jobs, tokenFile, coll, logger); err != nil {
			return nil, nil, err
		}
	}
	if auto.Mode == autorotate.Off {
		return nil, api, nil
	}
	sched := autorotate.New(auto, rot, jobs, coll, reg, logger)
	go sched.Run(ctx)
	return sched, api, nil
}

// rotationAPI is the rotation API; it stays off unless a token file is given.
func rotationAPI(rot *rotation.Rotator, jobs *rotation.Jobs, tokenFile string, coll *collector.Collector, logger *slog.Logger) (*rotation.API, error) {
	token, loose, err := rotation.OpenToken(tokenFile)
	if err != nil {
		return nil, err
	}
	if loose {
		logger.Warn("token file is readable by group or others; chmod 600 it", "file", tokenFile)
	}
	logger.Info("rotation API enabled", "backup_dir", rot.BackupDir())
	return rotation.NewAPI(rot, jobs, token, coll), nil
}

// foreground runs jobs for the rotate and restore subcommands, printing each step, and on
// SIGTERM or SIGINT lets the job finish or roll back within the grace period.
type foreground struct {
	rot   *rotation.Rotator
	grace time.Duration
}

// recoverJobs finishes the jobs a dead process left unfinished before anything else.
func (fg foreground) recoverJobs() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	found, err := fg.rot.Resumable(ctx, true)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "recovering unfinished jobs:", err)
	}
	ok := true
	for _, job := range found {
		rep := job.Report()
		fmt.Fprintf(os.Stderr, "finishing %s job %s of %s, which a dead process left unfinished\n", rep.Kind, rep.ID, rep.Container)
		if rep = fg.run(job); rep.State != rotation.Succeeded {
			ok = false
		}
		fmt.Fprintf(os.Stderr, "recovered job %s: %s\n", rep.ID, rep.State)
	}
	return ok
}

func (fg foreground) rotate(name string, req rotation.Request) int {
	return fg.runNew(name, func(c rancher.Container) (*rotation.Job, error) {
		return fg.rot.NewRotation(c, req, rotation.TriggerCLI)
	})
}

func (fg foreground) restore(name, backup string) int {
	return fg.runNew(name, func(c rancher.Container) (*rotation.Job, error) {
		return fg.rot.NewRestore(c, backup, rotation.TriggerCLI)
	})
}

// runNew runs a new job and prints its report as JSON. Exit 0 when it succeeded.
func (fg foreground) runNew(name string, newJob func(rancher.Container) (*rotation.Job, error)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c, err := fg.rot.Lookup(ctx, name)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	job, err := newJob(c)
	var busy *rotation.ErrBusy
	if errors.As(err, &busy) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", c.Name, err)
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep := fg.run(job)
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

// run runs a job, printing each step as it starts and ends. A signal lets it finish or roll
// back within the grace period; past that the process exits and the next start finishes it.
func (fg foreground) run(job *rotation.Job) rotation.Report {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan rotation.Report, 1)
	go func() {
		done <- job.Run(ctx, printStep)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	select {
	case rep := <-done:
		return rep
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "%s: the job finishes or rolls back within %s\n", sig, fg.grace)
	}
	ended := make(chan struct{})
	var rep rotation.Report
	go func() {
		rep = <-done
		close(ended)
	}()
	if !rotation.FinishWithin(ended, func() { cancel(rotation.ErrStopping) }, fg.grace) {
		fmt.Fprintln(os.Stderr, "the job did not end within the stop grace; the next start finishes it from its journal")
		return job.Report()
	}
	return rep
}

func printStep(s rotation.Step) {
	if s.Outcome == rotation.StepRunning {
		fmt.Fprintf(os.Stderr, "%s %-10s ...\n", s.Start.Local().Format("15:04:05"), s.Name)
		return
	}
	fmt.Fprintf(os.Stderr, "%s %-10s %s (%s) %s\n", s.End.Local().Format("15:04:05"), s.Name, s.Outcome,
		s.End.Sub(s.Start).Round(time.Millisecond), s.Detail)
}
