package collector

import (
	"crypto/x509"
	"sync"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

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
	settings *model.Settings
	at       time.Time
	trust    model.Trust
	ok       bool
}

func (m *trustMemo) of(snap model.Snapshot, container string) (model.Trust, bool) {
	var leaf *x509.Certificate
	var settings *model.Settings
	for _, r := range snap.Sources {
		switch {
		case r.Container != container:
		case r.Source == model.SourceUI && r.Up && len(r.Chain) > 0:
			leaf = r.Chain[0]
		case r.Source == model.SourceSetting:
			settings = r.Settings
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.last[container]
	if ok && e.leaf == leaf && e.settings == settings && snap.Taken.Sub(e.at) < trustReuse {
		return e.trust, e.ok
	}
	t, found := model.TrustOf(snap, container, snap.Taken)
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
func (w *checksumWatch) observe(snap model.Snapshot) map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]checksumSeen{}
	}
	out := map[string]time.Time{}
	for _, r := range snap.Sources {
		if r.Source != model.SourceSetting || r.Settings == nil {
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
