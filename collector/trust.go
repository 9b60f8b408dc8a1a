package collector

import (
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Trust is what the agents of a Rancher server's downstream clusters are told to trust, and
// what they will conclude of the UI chain on their next connection.
type Trust struct {
	Settings
	Checksum string // what agents pin (CATTLE_CA_CHECKSUM): the SHA-256 of what /cacerts serves
	// Checked: the UI chain was read as well, and Trusted and Why say how it verifies.
	Checked, Trusted bool
	Why              string
}

// Trust is the trust of a container's agents, when its settings were read.
func (s Snapshot) Trust(container string, now time.Time) (Trust, bool) {
	var settings *Settings
	var chain SourceResult
	for _, r := range s.Sources {
		switch {
		case r.Container != container:
		case r.Source == SourceSetting:
			settings = r.Settings
		case r.Source == SourceUI:
			chain = r
		}
	}
	if settings == nil {
		return Trust{}, false
	}
	t := Trust{Settings: *settings, Checksum: rancher.CAChecksum(settings.CACerts)}
	if chain.Up && len(chain.Chain) > 0 {
		t.Checked = true
		t.Trusted, t.Why = rancher.ChainTrusted(chain.Chain, settings.CACerts, settings.ServerURL, now)
	}
	return t, true
}
