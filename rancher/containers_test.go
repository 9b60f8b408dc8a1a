package rancher

import (
	"context"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/enginetest"
)

func rancherContainer(id, name, image string, state container.ContainerState, created int64, volume string) *enginetest.Container {
	return &enginetest.Container{ID: id, Name: name, Image: image, State: state, Created: created,
		Mounts: []container.MountPoint{{Type: "volume", Name: volume, Source: "/var/lib/docker/volumes/" + volume + "/_data", Destination: DataDir}}}
}

// TestDiscoverReadsOneContainerPerDataVolume: after two upgrades by Rancher's procedure a host
// holds the stopped old containers and the data containers that never ran, all on the volume the
// running server uses: only the running server is read. A stopped server alone on its volume is
// read; so is the newest of stopped ones sharing one; helpers and other images are not servers.
func TestDiscoverReadsOneContainerPerDataVolume(t *testing.T) {
	eng := enginetest.New(
		rancherContainer("a1", "rancher", "rancher/rancher:v2.10.3", container.StateExited, 100, "v1"),
		rancherContainer("a2", "rancher-data", "rancher/rancher:v2.10.3", container.StateCreated, 110, "v1"),
		rancherContainer("a3", "rancher-2113", "rancher/rancher:v2.11.3", container.StateExited, 120, "v1"),
		rancherContainer("a4", "rancher-data-2113", "rancher/rancher:v2.11.3", container.StateCreated, 130, "v1"),
		rancherContainer("a5", "rancher-2123", "rancher/rancher:v2.12.3", container.StateRunning, 140, "v1"),
		rancherContainer("b1", "lab", "registry.example.com/rancher/rancher:v2.3.1", container.StateExited, 50, "v2"),
		rancherContainer("c1", "old", "rancher/rancher:v2.5.7", container.StateExited, 10, "v3"),
		rancherContainer("c2", "older-data", "rancher/rancher:v2.5.7", container.StateCreated, 20, "v3"),
		rancherContainer("c3", "newer", "rancher/rancher:v2.6.0", container.StateExited, 30, "v3"),
		&enginetest.Container{ID: "h1", Image: "rancher/rancher:v2.12.3", Labels: map[string]string{RoleLabel: RoleHelper}},
		&enginetest.Container{ID: "x1", Image: "nginx:1.27"},
	)
	ids, superseded, err := Discover(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a5", "b1", "c3"}) {
		t.Fatalf("read %v, want the running server, the lone stopped one and the newest stopped one", ids)
	}
	want := map[Superseded]bool{{"rancher", "rancher-2123"}: true, {"rancher-data", "rancher-2123"}: true, {"rancher-2113", "rancher-2123"}: true,
		{"rancher-data-2113", "rancher-2123"}: true, {"old", "newer"}: true, {"older-data", "newer"}: true}
	if len(superseded) != len(want) {
		t.Fatalf("superseded %v", superseded)
	}
	for _, s := range superseded {
		if !want[s] {
			t.Fatalf("superseded %v: %+v not wanted", superseded, s)
		}
	}
}
