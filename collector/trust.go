package collector

import (
	"crypto/x509"
	"sync"
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
		t.AnchorKnown = len(rancher.CACertsBlocks(settings.CACerts)) > 0
		if i := rancher.Anchor(chain.Chain, settings.CACerts); i >= 0 {
			t.Anchor = CACertPath(i)
		}
	}
	return t, true
}

// trustReuse is how long a verification of the UI chain holds while its inputs stay the same:
// the chain's validity only changes with time.
const trustReuse = time.Minute

// trustMemo keeps the trust of each container between scrapes: the chain is verified again
// only when the UI chain or the settings were read again, or trustReuse passed.
type trustMemo struct {
	mu   sync.Mutex
	last map[string]trustEntry // by container
}

type trustEntry struct {
	leaf     *x509.Certificate
	settings *Settings
	at       time.Time
	trust    Trust
	ok       bool
}

func (m *trustMemo) of(snap Snapshot, container string) (Trust, bool) {
	var leaf *x509.Certificate
	var settings *Settings
	for _, r := range snap.Sources {
		switch {
		case r.Container != container:
		case r.Source == SourceUI && r.Up && len(r.Chain) > 0:
			leaf = r.Chain[0]
		case r.Source == SourceSetting:
			settings = r.Settings
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.last[container]
	if ok && e.leaf == leaf && e.settings == settings && snap.Taken.Sub(e.at) < trustReuse {
		return e.trust, e.ok
	}
	t, found := snap.Trust(container, snap.Taken)
	if m.last == nil {
		m.last = map[string]trustEntry{}
	}
	m.last[container] = trustEntry{leaf: leaf, settings: settings, at: snap.Taken, trust: t, ok: found}
	return t, found
}

// checksumWatch remembers, per container, the cacerts checksum agents pin and when this process
// saw it change: agents registered before refuse the server from then on.
type checksumWatch struct {
	mu   sync.Mutex
	seen map[string]checksumSeen // by container
}

type checksumSeen struct {
	sum     string
	changed time.Time
}

// observe notes the checksums of a snapshot and returns when each container's last changed
// (absent: not since this process started).
func (w *checksumWatch) observe(snap Snapshot) map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]checksumSeen{}
	}
	out := map[string]time.Time{}
	for _, r := range snap.Sources {
		if r.Source != SourceSetting || r.Settings == nil {
			continue
		}
		sum := rancher.CAChecksum(r.Settings.CACerts)
		prev, ok := w.seen[r.Container]
		switch {
		case !ok:
			prev = checksumSeen{sum: sum}
		case prev.sum != sum:
			prev = checksumSeen{sum: sum, changed: snap.Taken}
		}
		w.seen[r.Container] = prev
		if !prev.changed.IsZero() {
			out[r.Container] = prev.changed
		}
	}
	return out
}
