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
	Client  *client.Client
	Host    string    // the DOCKER_HOST the engine answers on
	started *exec.Cmd // the dockerd the harness started, if it did
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
	for _, dir := range []string{"root", "exec"} {
		if err := os.MkdirAll(filepath.Join(privateRoot, dir), 0o700); err != nil {
			return nil, err
		}
	}
	logFile, err := os.Create(filepath.Join(privateRoot, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("dockerd", "--host", privateHost,
		"--data-root", filepath.Join(privateRoot, "root"), "--exec-root", filepath.Join(privateRoot, "exec"),
		"--pidfile", filepath.Join(privateRoot, "dockerd.pid"), "--storage-driver=vfs")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives an interrupted test's process group
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cli, err := ping(ctx, privateHost); err == nil {
			os.Setenv("DOCKER_HOST", privateHost)
			return &Engine{Client: cli, Host: privateHost, started: cmd}, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("dockerd did not answer on %s within 60s; see %s/dockerd.log", privateHost, privateRoot)
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
