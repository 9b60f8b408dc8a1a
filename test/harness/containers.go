package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// SimOptions configure one simulator container.
type SimOptions struct {
	Profile  Profile // V23 when empty
	LeafDays int     // validity left on k3s leaves at first start; negative: expired; 0 means 365
	UIDays   int     // validity left on the UI certificate at first start; 0 means 365
	Env      []string
	Args     []string // Rancher's arguments, such as --no-cacerts
	// CrashLoop gives the container --restart=unless-stopped, as a real Rancher server has.
	CrashLoop bool
	// NoStart creates the container without starting it.
	NoStart bool
	// volumesFrom: the container takes its volumes from this one (an upgrade).
	volumesFrom string
}

// Sim is a running (or created) simulator container.
type Sim struct {
	ID, Name string
	Profile  Profile
	UIPort   int // host port published for 443/tcp
}

// RandomName returns prefix-<8 hex digits>, unique per run.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// StartSim creates and starts a simulator container; the test removes it with its volume.
func (e *Engine) StartSim(t testing.TB, opt SimOptions) *Sim {
	t.Helper()
	ctx := context.Background()
	sim, err := e.CreateSim(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Remove(sim.ID) })
	if opt.NoStart {
		return sim
	}
	if err := e.StartContainer(ctx, sim); err != nil {
		t.Fatal(err)
	}
	return sim
}

// CreateSim creates a simulator container with a unique name and 443/80 published on
// loopback at ports the engine picks.
func (e *Engine) CreateSim(ctx context.Context, opt SimOptions) (*Sim, error) {
	return e.CreateSimNamed(ctx, RandomName("rce-sim"), opt)
}

// CreateSimNamed is CreateSim with a chosen name.
func (e *Engine) CreateSimNamed(ctx context.Context, name string, opt SimOptions) (*Sim, error) {
	if opt.Profile.Image == "" {
		opt.Profile = V23
	}
	env := append([]string{}, opt.Env...)
	if opt.LeafDays != 0 {
		env = append(env, "SIM_LEAF_DAYS="+strconv.Itoa(opt.LeafDays))
	}
	if opt.UIDays != 0 {
		env = append(env, "SIM_UI_DAYS="+strconv.Itoa(opt.UIDays))
	}
	host := &container.HostConfig{PortBindings: network.PortMap{
		network.MustParsePort("443/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}},
		network.MustParsePort("80/tcp"):  {{HostIP: netip.MustParseAddr("127.0.0.1")}},
	}}
	if opt.CrashLoop {
		host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	}
	if opt.volumesFrom != "" {
		host.VolumesFrom = []string{opt.volumesFrom}
	}
	res, err := e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: opt.Profile.Image, Env: env, Cmd: opt.Args, Labels: map[string]string{ImageLabel: "true"}},
		HostConfig: host,
	})
	if err != nil {
		return nil, fmt.Errorf("create simulator: %w", err)
	}
	return &Sim{ID: res.ID, Name: name, Profile: opt.Profile}, nil
}

// StartContainer starts a simulator and reads back its published UI port.
func (e *Engine) StartContainer(ctx context.Context, sim *Sim) error {
	if _, err := e.Client.ContainerStart(ctx, sim.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", sim.Name, err)
	}
	in, err := e.Client.ContainerInspect(ctx, sim.ID, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	for _, b := range in.Container.NetworkSettings.Ports[network.MustParsePort("443/tcp")] {
		sim.UIPort, _ = strconv.Atoi(b.HostPort)
	}
	return nil
}

// Remove force-removes a container with its anonymous volumes.
func (e *Engine) Remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = e.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}) // gone already is fine
}

// RemoveLabelled removes every container the harness made, in this run or an interrupted one.
func (e *Engine) RemoveLabelled() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", ImageLabel)})
	if err != nil {
		return
	}
	for _, c := range res.Items {
		e.Remove(c.ID)
	}
}

// WaitLog waits until the container's log contains substr.
func (e *Engine) WaitLog(t testing.TB, id, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var logs string
	for time.Now().Before(deadline) {
		logs = e.Logs(t, id)
		if strings.Contains(logs, substr) {
			return logs
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("log of %s has no %q after %s:\n%s", id, substr, timeout, logs)
	return ""
}

// UpgradeSim upgrades a simulator to another release as an operator upgrades a single-node
// Rancher (Rancher's docs, "Upgrading Rancher installed with Docker"): stop the container, create
// a data container from it (--volumes-from, never started), and run the new release's image with
// --volumes-from the data container. The old container stays, stopped. The test removes all three.
func (e *Engine) UpgradeSim(t testing.TB, old *Sim, opt SimOptions) *Sim {
	t.Helper()
	ctx := context.Background()
	timeout := 10
	if _, err := e.Client.ContainerStop(ctx, old.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop %s: %v", old.Name, err)
	}
	data, err := e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       old.Name + "-data",
		Config:     &container.Config{Image: old.Profile.Image, Labels: map[string]string{ImageLabel: "true"}},
		HostConfig: &container.HostConfig{VolumesFrom: []string{old.ID}},
	})
	if err != nil {
		t.Fatalf("create the data container of %s: %v", old.Name, err)
	}
	t.Cleanup(func() { e.Remove(data.ID) })
	opt.volumesFrom = data.ID
	return e.StartSim(t, opt)
}
