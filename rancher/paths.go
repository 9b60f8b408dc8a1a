// Package rancher is the one place that knows single-node Rancher servers: how to find their
// containers, where embedded k3s keeps its certificates, how to read them and where the UI is.
package rancher

// Where embedded k3s keeps its certificates inside a Rancher server container.
const (
	DataDir      = "/var/lib/rancher"
	ServerTLSDir = "/var/lib/rancher/k3s/server/tls"
	AgentDir     = "/var/lib/rancher/k3s/agent"
)

// TreeDirs are the directories read for certificates; AgentDir may be missing.
var TreeDirs = []string{ServerTLSDir, AgentDir}

// ImageRepository is the repository path of Rancher server images, under any registry.
const ImageRepository = "rancher/rancher"

// HelperLabel marks the short-lived containers the rotation starts from a Rancher image, so
// that discovery does not mistake them for Rancher servers.
const HelperLabel = "io.rancher-cert-exporter.helper"
