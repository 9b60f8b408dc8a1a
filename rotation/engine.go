package rotation

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Engine is the part of the Docker Engine API a job uses: the reads of the rancher package,
// and the few calls that change a container. dockerEngine is the real one; the state machine's
// tests run against a fake.
type Engine interface {
	rancher.Engine
	Stop(ctx context.Context, id string) error
	Start(ctx context.Context, id string) error
	// RunHelper runs cmd in a short-lived container of c's image with c's volumes, no network
	// and no shell, labelled for the job; it waits for it, removes it, and returns its output
	// in the error when it fails.
	RunHelper(ctx context.Context, c rancher.Container, jobID string, cmd []string) error
	// RemoveHelpers removes the helper containers for which keep is false, given their
	// labels, and returns the labels of those it removed.
	RemoveHelpers(ctx context.Context, keep func(labels map[string]string) bool) ([]map[string]string, error)
	// CopyTo extracts a tar stream onto "/" of a container.
	CopyTo(ctx context.Context, id string, tar io.Reader) error
	// Logs is the container's log since a time.
	Logs(ctx context.Context, id string, since time.Time) (string, error)
	// API connects to the container's own API server, with its kubeconfig and address as they
	// are now (a start may change both); acceptExpired accepts an expired serving certificate
	// that is otherwise valid.
	API(ctx context.Context, id string, acceptExpired bool) (ContainerAPI, error)
}

// ContainerAPI is what a job does through a container's own API server.
type ContainerAPI interface {
	// Get returns an object as the API server returned it, and whether it exists.
	Get(ctx context.Context, o cluster.Object) ([]byte, bool, error)
	Delete(ctx context.Context, o cluster.Object) (bool, error)
	// Put creates an object from its backup, or replaces it; it says which.
	Put(ctx context.Context, o cluster.Object, backup []byte) (string, error)
	// ServingCertificate is the certificate 6443 serves, verified as a client verifies it.
	ServingCertificate(ctx context.Context) (*x509.Certificate, error)
}

// dockerEngine is Engine on a Docker client.
type dockerEngine struct {
	*client.Client
	stopTimeout time.Duration
	stall       func(string)
}

// NewEngine is the Engine of a Docker client; stopTimeout is docker stop's grace period, stall
// the crash point hook (Config.Stall; nil in production).
func NewEngine(cli *client.Client, stopTimeout time.Duration, stall func(string)) Engine {
	return dockerEngine{Client: cli, stopTimeout: stopTimeout, stall: stall}
}

func (e dockerEngine) Stop(ctx context.Context, id string) error {
	secs := int(e.stopTimeout.Seconds())
	if _, err := e.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

func (e dockerEngine) Start(ctx context.Context, id string) error {
	if _, err := e.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

func (e dockerEngine) RunHelper(ctx context.Context, c rancher.Container, jobID string, cmd []string) error {
	res, err := e.ContainerCreate(ctx, rancher.HelperSpec(c, jobID, cmd))
	if err != nil {
		return fmt.Errorf("create helper container: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = e.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true}) // else removed by its label later
	}()
	stall(e.stall, "remove")
	wait := e.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start helper container: %w", err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			out, _ := e.Logs(ctx, res.ID, time.Time{})
			return fmt.Errorf("helper container exited %d: %s", r.StatusCode, strings.TrimSpace(out))
		}
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("wait for helper container: %w", err)
	}
}

func (e dockerEngine) RemoveHelpers(ctx context.Context, keep func(labels map[string]string) bool) ([]map[string]string, error) {
	res, err := e.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", rancher.RoleLabel+"="+rancher.RoleHelper)})
	if err != nil {
		return nil, err
	}
	var removed []map[string]string
	for _, c := range res.Items {
		if keep(c.Labels) {
			continue
		}
		if _, err := e.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			return removed, err
		}
		removed = append(removed, c.Labels)
	}
	return removed, nil
}

func (e dockerEngine) CopyTo(ctx context.Context, id string, tar io.Reader) error {
	_, err := e.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: tar})
	return err
}

func (e dockerEngine) API(ctx context.Context, id string, acceptExpired bool) (ContainerAPI, error) {
	c, err := rancher.Inspect(ctx, e, id)
	if err != nil {
		return nil, err
	}
	return rancher.API(ctx, e, c, rancher.APIOptions{Timeout: 10 * time.Second, Restarting: true, AcceptExpired: acceptExpired})
}

func (e dockerEngine) Logs(ctx context.Context, id string, since time.Time) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}
	if !since.IsZero() {
		opts.Since = since.Format(time.RFC3339Nano)
	}
	r, err := e.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, r)
	return out.String(), err
}
