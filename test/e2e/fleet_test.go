package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// The fleet: one ready simulator of every release — k3s leaves 100 days from expiry at the
// install, the UI certificate 200 — shared by the tests that only read (the file table, the
// exporter's view of each release, the secrets kubectl lists). Nothing may change them; the
// harness removes them when the package ends.
var (
	fleetOnce    sync.Once
	fleetSims    map[string]*harness.Sim
	fleetStarted time.Time
	fleetErr     error
)

const (
	fleetLeafDays = 100
	fleetUIDays   = 200
)

// fleet returns the shared simulators by Rancher version, and when they were started.
func fleet(t *testing.T) (map[string]*harness.Sim, time.Time) {
	t.Helper()
	fleetOnce.Do(func() {
		ctx := context.Background()
		fleetStarted = time.Now()
		sims := map[string]*harness.Sim{}
		for _, p := range harness.Profiles {
			sim, err := engine.CreateSim(ctx, harness.SimOptions{Profile: p, LeafDays: fleetLeafDays, UIDays: fleetUIDays})
			if err == nil {
				err = engine.StartContainer(ctx, sim)
			}
			if err != nil {
				fleetErr = err
				return
			}
			sims[p.Rancher] = sim
		}
		for _, sim := range sims {
			if err := engine.AwaitLog(sim.ID, simReady, 2*time.Minute); err != nil {
				fleetErr = err
				return
			}
		}
		fleetSims = sims
	})
	if fleetErr != nil {
		t.Fatal("the shared simulators:", fleetErr)
	}
	return fleetSims, fleetStarted
}
