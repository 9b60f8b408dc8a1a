package rancher

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Container is what the exporter and the rotation need to know of a Rancher container.
type Container struct {
	ID           string
	Name         string // without the leading "/"
	Image        string // as configured, e.g. rancher/rancher:v2.3.1
	ImageID      string // the image the container runs, exactly
	State        container.ContainerState
	RestartCount int
	StartedAt    time.Time // the last start; zero when never started
	// UIAddress is host:port of the Rancher UI: the published 443/tcp, else the container IP.
	UIAddress string
	// APIAddress is host:port of the embedded k3s API server: the container's address on its
	// Docker network (127.0.0.1 on the host network), port 6443, which is never published.
	APIAddress string
	// Profile is what the container's release does with its certificates.
	Profile Profile
}

// Up tells whether the container runs or crash-loops, as opposed to stopped or created.
func (c Container) Up() bool {
	return c.State == container.StateRunning || c.State == container.StateRestarting
}

// IsRancherImage tells whether an image reference is in the rancher/rancher repository,
// under any registry and with any tag or digest.
func IsRancherImage(image string) bool {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return false
	}
	p := reference.Path(named)
	return p == ImageRepository || strings.HasSuffix(p, "/"+ImageRepository)
}

// Discover lists the Rancher server containers in any state.
func Discover(ctx context.Context, cli Engine) ([]string, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, dockerError("list containers", err)
	}
	var ids []string
	for _, c := range res.Items {
		if c.Labels[RoleLabel] == RoleHelper || !IsRancherImage(c.Image) {
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// Inspect looks up one container by name or ID.
func Inspect(ctx context.Context, cli Engine, nameOrID string) (Container, error) {
	res, err := cli.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		return Container{}, dockerError("inspect container "+nameOrID, err)
	}
	in := res.Container
	c := Container{
		ID:           in.ID,
		Name:         strings.TrimPrefix(in.Name, "/"),
		RestartCount: in.RestartCount,
		ImageID:      in.Image,
	}
	var env []string
	var labels map[string]string
	if in.Config != nil {
		c.Image, env, labels = in.Config.Image, in.Config.Env, in.Config.Labels
	}
	c.Profile = ProfileOf(DetectVersions(env, labels, c.Image))
	if in.State != nil {
		c.State = in.State.Status
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, in.State.StartedAt)
	}
	if in.NetworkSettings != nil {
		c.UIAddress = uiAddress(in.NetworkSettings)
		c.APIAddress = apiAddress(in.NetworkSettings)
	}
	if in.HostConfig != nil && in.HostConfig.NetworkMode.IsHost() {
		c.APIAddress = net.JoinHostPort("127.0.0.1", APIPort)
	}
	return c, nil
}

func uiAddress(ns *container.NetworkSettings) string {
	for _, b := range ns.Ports[network.MustParsePort("443/tcp")] {
		if b.HostPort == "" {
			continue
		}
		host := "127.0.0.1"
		if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
			host = b.HostIP.String()
		}
		return net.JoinHostPort(host, b.HostPort)
	}
	if ip := containerIP(ns); ip != "" {
		return net.JoinHostPort(ip, "443")
	}
	return ""
}

// APIPort is where k3s serves its API inside the container.
const APIPort = "6443"

func apiAddress(ns *container.NetworkSettings) string {
	if ip := containerIP(ns); ip != "" {
		return net.JoinHostPort(ip, APIPort)
	}
	return ""
}

// containerIP is the container's address on its first Docker network with one.
func containerIP(ns *container.NetworkSettings) string {
	names := make([]string, 0, len(ns.Networks))
	for name := range ns.Networks {
		names = append(names, name)
	}
	sort.Strings(names) // the same network every time
	for _, name := range names {
		if ep := ns.Networks[name]; ep != nil && ep.IPAddress.IsValid() && !ep.IPAddress.IsUnspecified() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// dockerError classifies an engine error under its read-error reason.
func dockerError(what string, err error) error {
	switch {
	case errdefs.IsNotFound(err):
		return readerr.Newf(readerr.ContainerNotFound, "%s: %v", what, err)
	case client.IsErrConnectionFailed(err), isDialError(err):
		return readerr.Newf(readerr.DockerUnreachable, "%s: %v", what, err)
	default:
		return readerr.Newf(readerr.DockerError, "%s: %v", what, err)
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
