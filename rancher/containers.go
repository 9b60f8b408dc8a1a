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
	// RestartsOnExit: the restart policy starts the container again when it exits (always,
	// unless-stopped, on-failure), as every real Rancher server's does.
	RestartsOnExit bool
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

// Superseded is a Rancher container that discovery leaves out: it shares its data volume with
// another Rancher container, which is read instead.
type Superseded struct {
	Name, By string // container names
}

// Discover lists the Rancher server containers in any state. An upgrade leaves containers that
// share the server's data volume (/var/lib/rancher): the stopped old container, and a data
// container created from it that never ran (Rancher's upgrade procedure for Docker installs).
// Of containers sharing a volume only one is read: the one that runs, else the most recently
// created one that ever started; the others are returned as superseded.
func Discover(ctx context.Context, cli Engine) ([]string, []Superseded, error) {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, nil, dockerError("list containers", err)
	}
	groups := map[string][]container.Summary{}
	var order []string
	for _, c := range res.Items {
		if c.Labels[RoleLabel] == RoleHelper || !IsRancherImage(c.Image) {
			continue
		}
		key := "container " + c.ID
		for _, m := range c.Mounts {
			if m.Destination == DataDir {
				key = "volume " + m.Name + m.Source
			}
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], c)
	}
	var ids []string
	var superseded []Superseded
	for _, key := range order {
		group := groups[key]
		keep := group[0]
		for _, c := range group[1:] {
			if rank(c) > rank(keep) || rank(c) == rank(keep) && c.Created > keep.Created {
				keep = c
			}
		}
		ids = append(ids, keep.ID)
		for _, c := range group {
			if c.ID != keep.ID {
				superseded = append(superseded, Superseded{Name: summaryName(c), By: summaryName(keep)})
			}
		}
	}
	return ids, superseded, nil
}

// rank orders the containers that share a data volume: the one that runs or crash-loops, then
// one that ran, then one that never started (a data container).
func rank(c container.Summary) int {
	switch c.State {
	case container.StateRunning, container.StateRestarting:
		return 2
	case container.StateCreated:
		return 0
	}
	return 1
}

func summaryName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID
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
	if in.HostConfig != nil {
		if in.HostConfig.NetworkMode.IsHost() {
			c.APIAddress = net.JoinHostPort("127.0.0.1", APIPort)
		}
		p := in.HostConfig.RestartPolicy
		c.RestartsOnExit = p.Name == container.RestartPolicyAlways || p.Name == container.RestartPolicyUnlessStopped || p.Name == container.RestartPolicyOnFailure
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
