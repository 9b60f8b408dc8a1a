// Package collector reads certificates from the sources (k3s trees in Rancher containers,
// the Rancher UI, host files) and turns them into Prometheus metrics.
package collector

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
	// Class is what a file of k3s's is to the container's release; an unused one was left
	// by an earlier release. Zero for the other sources.
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
}

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
