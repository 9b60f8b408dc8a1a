package model

import (
	"fmt"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
)

// The sources, as the source label names them. Each is read by one plugin of the collector.
const (
	// SourceK3s is k3s's certificate files in the container, read through the archive endpoint:
	// running, crash-looping or stopped alike.
	SourceK3s = "k3s"
	// SourceUI is the chain the Rancher UI serves on 443.
	SourceUI = "ui"
	// SourceSecret is the certificates the embedded cluster keeps as secrets.
	SourceSecret = "secret"
	// SourceListener is the 6443 certificate Rancher 2.3's k3s keeps in its ListenerConfig, not in
	// a file.
	SourceListener = "listener"
	// SourceSetting is Rancher's settings that decide what downstream agents trust — cacerts,
	// agent-tls-mode, server-url. The cacerts CA is its certificate.
	SourceSetting = "setting"
	// SourceService is the ClusterIPs of the Services whose names certificates must cover.
	SourceService = "service"
	// SourceDownstream is the clusters the Rancher server manages: their RKE1 certificates and
	// whether their agents are connected.
	SourceDownstream = "downstream"
	// SourceFile is certificate files on the host (--files.path).
	SourceFile = "file"
)

// ListenerPath names 2.3's listener certificate in the path label: its object.
var ListenerPath = cluster.ListenerConfig.Namespace + "/" + cluster.ListenerConfig.Name

// CACertsPath names the cacerts setting in the path label: each of its certificates is
// CACertPath of its position, a value with none is CACertsPath.
const CACertsPath = "cacerts"

// CACertPath names the i-th certificate (from 0) of the cacerts setting: cacerts#1 is the first.
func CACertPath(i int) string { return fmt.Sprintf("%s#%d", CACertsPath, i+1) }

// DownstreamCluster is a cluster the server manages, but its own.
type DownstreamCluster struct {
	ID, DisplayName, Driver, Provider, KubernetesVersion string
	RKE1                                                 bool
	// Connected: its agent is connected — the Connected condition is True, or before 2.6, which
	// has none, Ready is; Since is when that condition last changed.
	Connected bool
	Since     time.Time
}
