// Package model is what the exporter knows, as plain data every reader reads: the snapshot of
// each Rancher container and its sources, each certificate with its role (rancher.Classification:
// what it is to the container's release, who renews it, whether a rotation does), set once when
// its source's read is classified, and the verdicts concluded once per snapshot (the agents'
// trust, the names each certificate must cover). No I/O: the collector fills it, check, the
// status page, automatic rotation and the exposition read it.
package model

import (
	"crypto/x509"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// CertFile is one certificate file and the certificate it stands for.
type CertFile struct {
	Container, Source, Path string
	Cert                    *certs.Info
	// Class is its role, set by its source: what it is to the container's release (an unused
	// one was left by an earlier release), who renews it, whether a rotation does.
	Class rancher.Classification
}

// FileError is something a source could not read, and why.
type FileError struct {
	Container, Source, Path string
	Err                     error
}

// SourceResult is one read of one source for one container ("" for host files).
type SourceResult struct {
	Container, Source string
	Up                bool
	Duration          time.Duration
	Certs             []CertFile
	Errors            []FileError
	// ReadAt is when the values were read; a scrape may report values older than itself.
	ReadAt time.Time
	// Chain is the chain the UI served, leaf first (source ui).
	Chain []*x509.Certificate
	// Settings are Rancher's settings for agents (source setting).
	Settings *Settings
	// Services are the ClusterIPs of the Services certificates must cover, by namespace/name
	// (source service).
	Services map[string]string
	// Clusters are the clusters the server manages, but its own (source downstream).
	Clusters []DownstreamCluster
}

// Settings are the Rancher settings that decide what the agents of downstream clusters trust.
type Settings struct {
	CACerts      string // the cacerts value as stored; what /cacerts serves follows from it
	AgentTLSMode string // effective: the value, else the default, else system-store
	ServerURL    string
}

// Snapshot is everything one gather found.
type Snapshot struct {
	Taken      time.Time // when it was complete
	Sources    []SourceResult
	Containers []rancher.Container
	// DockerUp is nil when no Docker source is configured.
	DockerUp *bool
	// EventsUp tells whether the engine's events are followed; nil when the collector does not
	// follow them (no Docker source, an engine without events, or not running: check).
	EventsUp *bool
	// Watching is how many Rancher containers are watched: those found, or while the engine
	// does not answer, those last found.
	Watching int
	// Looked says where discovery looked for Rancher containers, for a page that found none.
	Looked string
	// TreeReads counts the reads of each container's tree, by container name.
	TreeReads map[string]int
	// CACertsChanged is when this process saw the cacerts checksum of a container change.
	CACertsChanged map[string]time.Time
	// Verdicts are what Conclude concluded of each container, by name.
	Verdicts map[string]Verdicts
}

// Verdicts are what the exporter concludes of a container from its sources, once per snapshot.
type Verdicts struct {
	// Trust is what its downstream agents trust and make of the UI chain; HasTrust: its
	// settings were read.
	Trust    Trust
	HasTrust bool
	// Names are its certificates whose clients the exporter knows, checked against their names.
	Names []NameCheck
}

// Conclude sets the verdicts of every container of the snapshot. trustOf gives a container's
// trust (the collector's recalls it while its inputs are unchanged); nil concludes it afresh
// as of Taken.
func (s *Snapshot) Conclude(trustOf func(Snapshot, string) (Trust, bool)) {
	if trustOf == nil {
		trustOf = func(snap Snapshot, container string) (Trust, bool) { return TrustOf(snap, container, snap.Taken) }
	}
	s.Verdicts = map[string]Verdicts{}
	for _, c := range s.Containers {
		v := Verdicts{Names: NamesOf(*s, c)}
		v.Trust, v.HasTrust = trustOf(*s, c.Name)
		s.Verdicts[c.Name] = v
	}
}

// Trust is the trust of a container's agents, when its settings were read.
func (s Snapshot) Trust(container string) (Trust, bool) {
	v := s.Verdicts[container]
	return v.Trust, v.HasTrust
}

// Names are the name checks of a container's certificates.
func (s Snapshot) Names(container string) []NameCheck { return s.Verdicts[container].Names }

// Clusters lists the clusters a container manages, but its own, as last read.
func (s Snapshot) Clusters(container string) []DownstreamCluster {
	for _, r := range s.Sources {
		if r.Container == container && r.Source == SourceDownstream {
			return r.Clusters
		}
	}
	return nil
}

// Certs lists every certificate of the snapshot.
func (s Snapshot) Certs() []CertFile {
	var all []CertFile
	for _, r := range s.Sources {
		all = append(all, r.Certs...)
	}
	return all
}

// Errors lists every read error of the snapshot.
func (s Snapshot) Errors() []FileError {
	var all []FileError
	for _, r := range s.Sources {
		all = append(all, r.Errors...)
	}
	return all
}
