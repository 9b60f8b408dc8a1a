package rotation

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// engine is the rotation's view of the Docker engine.
type engine struct {
	cli         *client.Client
	stopTimeout time.Duration
}

func (e engine) stop(ctx context.Context, id string) error {
	secs := int(e.stopTimeout.Seconds())
	if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

func (e engine) start(ctx context.Context, id string) error {
	if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// ensureStarted starts the container if it is not running, retrying for a minute on a fresh
// context: it runs after a failure, when the job's context may be gone and the engine may be
// restarting.
func (e engine) ensureStarted(id string) error {
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var c rancher.Container
		if c, err = rancher.Inspect(ctx, e.cli, id); err == nil {
			if c.State == container.StateRunning || c.State == container.StateRestarting {
				cancel()
				return nil
			}
			err = e.start(ctx, id)
		}
		cancel()
		if err == nil {
			return nil
		}
		if readerr.ReasonOf(err) == readerr.ContainerNotFound {
			return err // gone: nothing to start
		}
		time.Sleep(time.Second)
	}
	return err
}

// removeFiles deletes exactly files from the container's volumes with a short-lived helper
// container of the container's own image: entrypoint rm, an explicit list, no shell and no
// globbing, so it works when docker exec cannot (the container is stopped).
func (e engine) removeFiles(ctx context.Context, c rancher.Container, files []string) error {
	if err := checkRemovable(files); err != nil {
		return err
	}
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:           c.ImageID,
			Entrypoint:      []string{"rm"},
			Cmd:             append([]string{"-f", "--"}, files...),
			Labels:          map[string]string{rancher.HelperLabel: c.Name},
			NetworkDisabled: true,
		},
		HostConfig: &container.HostConfig{VolumesFrom: []string{c.ID}, NetworkMode: "none"},
	})
	if err != nil {
		return fmt.Errorf("create helper container: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.cli.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true}) // else removed by its label later
	}()
	wait := e.cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start helper container: %w", err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			out, _ := e.logs(ctx, res.ID, time.Time{})
			return fmt.Errorf("helper container exited %d: %s", r.StatusCode, strings.TrimSpace(out))
		}
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("wait for helper container: %w", err)
	}
}

// logs returns the container's log since a time (all of it for the zero time).
func (e engine) logs(ctx context.Context, id string, since time.Time) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	if !since.IsZero() {
		opts.Since = since.Format(time.RFC3339Nano)
	}
	r, err := e.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, r)
	return out.String(), err
}
