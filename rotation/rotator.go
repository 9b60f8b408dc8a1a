package rotation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Config bounds and places the jobs.
type Config struct {
	BackupDir   string
	SettleTime  time.Duration // how long a started container must run cleanly
	StopTimeout time.Duration // docker stop grace period
	Timeout     time.Duration // a whole job
	BackupKeep  int           // verified backups kept per container after a success
	// OwnerWait is how long a rotation waits for the owners of the secrets it deleted to issue
	// them anew after the start.
	OwnerWait time.Duration
	Owner     string // this process, as journals and locks name it
	// Stall, when set, is called at each crash point of a job (see StallEnv): the tests stop
	// or kill the process there.
	Stall func(point string)
}

// Rotator runs rotation and restore jobs against one Docker engine.
type Rotator struct {
	eng     Engine
	cfg     Config
	logger  *slog.Logger
	metrics *Metrics
	// mine are the jobs this process runs or ran: never abandoned, whatever their journal says
	// (it may lag behind when the backup directory is full).
	mine sync.Map
}

// New makes a Rotator; metrics may be nil.
func New(eng Engine, cfg Config, logger *slog.Logger, metrics *Metrics) *Rotator {
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("process %d on %s", os.Getpid(), host)
	}
	return &Rotator{eng: eng, cfg: cfg, logger: logger, metrics: metrics}
}

// BackupDir is where backups, journals and locks are.
func (r *Rotator) BackupDir() string { return r.cfg.BackupDir }

// Lookup finds a Rancher container by name or ID.
func (r *Rotator) Lookup(ctx context.Context, name string) (rancher.Container, error) {
	return rancher.Inspect(ctx, r.eng, name)
}

// Request is what a rotation is asked to do.
type Request struct {
	Strategy Strategy
	// Secrets are in-cluster certificates (namespace/name) to renew besides what the strategy
	// plans; each must be one rancher.CheckRotatable accepts.
	Secrets []string
	DryRun  bool
}

// NewRotation prepares a rotation of c, taking c's lock: *ErrBusy when another job, in any
// process, rotates or restores it. A dry run takes no lock and writes nothing: no journal, no
// lock file, no directory; its report is all it leaves.
func (r *Rotator) NewRotation(c rancher.Container, req Request, trigger Trigger) (*Job, error) {
	for _, key := range req.Secrets {
		if err := rancher.CheckRotatable(key); err != nil {
			return nil, err
		}
	}
	return r.newJob(c, Report{Kind: KindRotate, Trigger: trigger, RequestedStrategy: req.Strategy, DryRun: req.DryRun, Secrets: slices.Compact(slices.Sorted(slices.Values(req.Secrets)))})
}

// NewRestore prepares the restore of a backup into c, taking c's lock.
func (r *Rotator) NewRestore(c rancher.Container, backup string, trigger Trigger) (*Job, error) {
	return r.newJob(c, Report{Kind: KindRestore, Trigger: trigger, Backup: backup})
}

func (r *Rotator) newJob(c rancher.Container, rep Report) (*Job, error) {
	id := make([]byte, 8)
	rand.Read(id)
	rep.ID, rep.Container, rep.State, rep.Created, rep.Steps = hex.EncodeToString(id), c.Name, Running, time.Now().UTC(), []Step{}
	var lock *containerLock
	if !rep.DryRun {
		var err error
		if lock, err = tryLock(r.cfg.BackupDir, c.ID, rep.ID, r.cfg.Owner); err != nil {
			return nil, err
		}
		r.mine.Store(rep.ID, true)
	}
	return &Job{rot: r, c: c, lock: lock, j: journal{Report: rep, ContainerID: c.ID, WasUp: c.Up(), Owner: r.cfg.Owner}}, nil
}
