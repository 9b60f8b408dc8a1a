package rotation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// containerLock makes one rotation or restore of a container run at a time, whatever the
// process: an flock on a file under the backup directory, keyed by container ID. The kernel
// releases it when the holder dies, however it dies. The holder writes who it is into the file.
type containerLock struct{ f *os.File }

// ErrBusy is returned when another job holds the container's lock.
type ErrBusy struct {
	Holder string // what the holder wrote: its job, process and start
	JobID  string
}

func (e *ErrBusy) Error() string {
	return "a rotation or restore of this container is already running: " + e.Holder
}

func lockFile(backupDir, containerID string) string {
	return filepath.Join(backupDir, "locks", containerID+".lock")
}

// tryLock takes the container's lock without waiting, and records the holder.
func tryLock(backupDir, containerID, jobID, owner string) (*containerLock, error) {
	f, err := flock(lockFile(backupDir, containerID))
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte("job "+jobID+" "+owner+"\n"), 0) // who holds it, for the loser's message
	}
	return &containerLock{f: f}, nil
}

// flock opens file and takes its lock without waiting: *ErrBusy, naming the holder, when a
// process holds it.
func flock(file string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(file)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h := strings.TrimSpace(string(holder))
			id, _, _ := strings.Cut(strings.TrimPrefix(h, "job "), " ")
			return nil, &ErrBusy{Holder: h, JobID: id}
		}
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	return f, nil
}

// release frees the lock; closing the file releases the flock.
func (l *containerLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// lockFree tells whether no live process holds the container's lock; the probe leaves the
// last holder's name in the file.
func lockFree(backupDir, containerID string) bool {
	f, err := flock(lockFile(backupDir, containerID))
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// holder tells, without writing anything, whether a live process holds the container's lock,
// and names the holder: for a dry run, which must not create the lock's directory or file.
func holder(backupDir, containerID string) (*ErrBusy, bool) {
	file := lockFile(backupDir, containerID)
	f, err := os.Open(file)
	if err != nil {
		return nil, false // no lock file: no job ever ran here
	}
	defer f.Close()
	// Shared: two probes never exclude each other; a job's exclusive lock excludes them.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return nil, false // closing the file releases the probe
	}
	h, _ := os.ReadFile(file)
	name := strings.TrimSpace(string(h))
	id, _, _ := strings.Cut(strings.TrimPrefix(name, "job "), " ")
	return &ErrBusy{Holder: name, JobID: id}, true
}
