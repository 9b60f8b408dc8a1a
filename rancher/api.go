package rancher

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// APIOptions say how to connect to a container's API server.
type APIOptions struct {
	Timeout time.Duration
	// Restarting: a crash-looping container is tried too (a rotation waits for it), not only a
	// running one.
	Restarting bool
	// AcceptExpired: the server's certificate may have expired (a rotation verifies the one
	// that renews it).
	AcceptExpired bool
	// Kubeconfig reads the kubeconfig; ReadKubeconfig when nil (the collector shares one read
	// between its sources).
	Kubeconfig func(ctx context.Context) ([]byte, error)
}

// API connects to the container's own k3s API server, at its address on its Docker network,
// with the admin kubeconfig k3s wrote in the container — the one client of a container's
// cluster the exporter makes.
func API(ctx context.Context, eng Engine, c Container, o APIOptions) (*cluster.Client, error) {
	switch {
	case c.State != container.StateRunning && (!o.Restarting || !c.Up()):
		return nil, readerr.Newf(readerr.APIUnreachable, "container %s is %s: its API server does not run", c.Name, c.State)
	case c.APIAddress == "":
		return nil, readerr.Newf(readerr.APIUnreachable, "container %s has no address on a Docker network", c.Name)
	}
	read := o.Kubeconfig
	if read == nil {
		read = func(ctx context.Context) ([]byte, error) { return ReadKubeconfig(ctx, eng, c.ID) }
	}
	kubeconfig, err := read(ctx)
	if err != nil {
		return nil, err
	}
	return cluster.New(cluster.Options{Kubeconfig: kubeconfig, Address: c.APIAddress, Timeout: o.Timeout, AcceptExpiredServer: o.AcceptExpired})
}
