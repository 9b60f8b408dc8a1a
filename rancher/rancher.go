// Package rancher is the one place that knows single-node Rancher servers: how to find their
// containers, which release they run and what that release does with its certificates,
// where it keeps them, how to read them and where the UI is.
package rancher

import (
	"context"
	"path"

	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
)

// Where Rancher and its embedded k3s keep things inside a Rancher server container.
const (
	DataDir          = "/var/lib/rancher"
	k3sDir           = "/var/lib/rancher/k3s"
	ServerTLSDir     = "/var/lib/rancher/k3s/server/tls"
	AgentDir         = "/var/lib/rancher/k3s/agent"
	ManagementTLSDir = "/var/lib/rancher/management-state/tls"
	// ServerCAFile is the CA that signs the 6443 serving certificates.
	ServerCAFile = ServerTLSDir + "/server-ca.crt"
)

// IsListenerCache tells whether a path is the dynamiclistener cache of the 6443 serving
// certificate (server/tls/dynamic-cert.json).
func IsListenerCache(p string) bool {
	return path.Dir(p) == ServerTLSDir && path.Base(p) == certs.DynamicCertFile
}

// ImageRepository is the repository path of Rancher server images, under any registry.
const ImageRepository = "rancher/rancher"

// Engine is the part of the Docker Engine API this package reads through; *client.Client
// has it.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	CopyFromContainer(ctx context.Context, id string, options client.CopyFromContainerOptions) (client.CopyFromContainerResult, error)
}
