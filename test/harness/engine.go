// Package harness gives the end-to-end tests a Docker engine, the simulator images and
// simulator containers, and removes what it made.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// privateRoot holds the engine the harness starts when none runs. The path stays short:
// unix socket paths are limited to 108 bytes.
const privateRoot = "/tmp/rce-docker"

var privateHost = "unix://" + filepath.Join(privateRoot, "docker.sock")

// Engine is a reachable Docker engine; Stop ends it only if the harness started it.
type Engine struct {
	Client     *client.Client
	Host       string    // the DOCKER_HOST the engine answers on
	started    *exec.Cmd // the dockerd the harness started, if it did
	root       string    // its data, exec root and socket
	ownNetwork bool      // in a network namespace of its own
}

// Connect connects to the engine named by DOCKER_HOST, else the default socket, else the one
// StartEngine starts, and sets DOCKER_HOST for child processes (the docker CLI, the exporter).
// It never starts one: tests use the engine they find.
func Connect(ctx context.Context) (*Engine, error) {
	var lastErr error
	for _, host := range []string{os.Getenv("DOCKER_HOST"), client.DefaultDockerHost, privateHost} {
		if host == "" {
			continue
		}
		cli, err := ping(ctx, host)
		if err == nil {
			os.Setenv("DOCKER_HOST", host)
			return &Engine{Client: cli, Host: host}, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no Docker engine answers: %w", lastErr)
}

// StartEngine connects, or installs docker.io and starts dockerd with a private data root
// when no engine answers: for scripts/sim and make test, never from a test.
func StartEngine(ctx context.Context) (*Engine, error) {
	if e, err := Connect(ctx); err == nil {
		return e, nil
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		if err := aptInstall("docker.io"); err != nil {
			return nil, err
		}
	}
	return startDockerd(ctx, privateRoot, false)
}

// StartSecondEngine starts another dockerd with its own socket, data and exec root under root
// (keep it short: socket paths are limited) and its own network namespace, so that its bridge
// and rules never touch the first engine's (a dockerd with --bridge=none deletes docker0).
// Its containers are reached through the socket only. Stop ends it.
func StartSecondEngine(ctx context.Context, root string) (*Engine, error) {
	return startDockerd(ctx, root, true)
}

func startDockerd(ctx context.Context, root string, ownNetwork bool) (*Engine, error) {
	for _, dir := range []string{"root", "exec"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			return nil, err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(root, "dockerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	host := "unix://" + filepath.Join(root, "docker.sock")
	cmd := exec.Command("dockerd", "--host", host,
		"--data-root", filepath.Join(root, "root"), "--exec-root", filepath.Join(root, "exec"),
		"--pidfile", filepath.Join(root, "dockerd.pid"), "--storage-driver=vfs")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives an interrupted test's process group
	if ownNetwork {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cli, err := ping(ctx, host); err == nil {
			if root == privateRoot {
				os.Setenv("DOCKER_HOST", host)
			}
			return &Engine{Client: cli, Host: host, started: cmd, root: root, ownNetwork: ownNetwork}, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("dockerd did not answer on %s within 60s; see %s/dockerd.log", host, root)
}

// Restart stops a dockerd the harness started, as a host's service manager would, and starts
// it again on the same root.
func (e *Engine) Restart(ctx context.Context) error {
	if e.started == nil {
		return errors.New("the harness did not start this engine")
	}
	if err := e.Stop(); err != nil {
		return err
	}
	started, err := startDockerd(ctx, e.root, e.ownNetwork)
	if err != nil {
		return err
	}
	*e = *started
	return nil
}

func ping(ctx context.Context, host string) (*client.Client, error) {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

// Started tells whether the harness started this engine itself.
func (e *Engine) Started() bool { return e.started != nil }

// Stop ends dockerd if the harness started it; an engine found running is left alone.
func (e *Engine) Stop() error {
	e.Client.Close()
	if e.started == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- e.started.Wait() }()
	_ = e.started.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		return e.started.Process.Kill()
	}
}

func stopProcess(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	for i := 0; i < 120; i++ {
		if p.Signal(syscall.Signal(0)) != nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return p.Kill()
}

// StopPrivateEngine stops a dockerd the harness left running detached (see cmd/simctl).
func StopPrivateEngine() error {
	data, err := os.ReadFile(filepath.Join(privateRoot, "dockerd.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return err
	}
	return stopProcess(pid)
}

// aptInstall installs Debian packages, as a fresh CI machine needs.
func aptInstall(pkgs ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%v missing and not root to install it: apt-get install %v", pkgs, pkgs)
	}
	update := exec.Command("apt-get", "update", "-qq")
	update.Stdout, update.Stderr = os.Stderr, os.Stderr
	if err := update.Run(); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	install := exec.Command("apt-get", append([]string{"install", "-y", "-qq"}, pkgs...)...)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("apt-get install %v: %w", pkgs, err)
	}
	return nil
}
