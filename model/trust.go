package model

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
	// AnchorKnown: the chain was checked against the certificates of cacerts; Anchor is the
	// path of the one it ends in (CACertPath), "" when none.
	AnchorKnown bool
	Anchor      string
}

// Judged tells whether a certificate of cacerts counts for the agents' trust: the one the UI
// chain ends in, or — while that is not known — every one.
func (t Trust) Judged(path string) bool {
	return !t.AnchorKnown || path == t.Anchor
}

// TrustOf concludes the trust of a container's agents as of now, when its settings were read.
func TrustOf(s Snapshot, container string, now time.Time) (Trust, bool) {
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
		t.AnchorKnown = len(rancher.CACertsBlocks(settings.CACerts)) > 0
		if i := rancher.Anchor(chain.Chain, settings.CACerts); i >= 0 {
			t.Anchor = CACertPath(i)
		}
	}
	return t, true
}
