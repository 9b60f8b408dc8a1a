package rancher

import (
	"net/url"
)

// ObjectKey names a namespaced object of a Rancher server's embedded cluster: a Service, a
// secret. String is namespace/name, as paths and reports name it.
type ObjectKey struct{ Namespace, Name string }

func (k ObjectKey) String() string { return k.Namespace + "/" + k.Name }

// The Services whose addresses certificates must cover: kubernetes, which pods reach the API
// server by (k3s's first address of the service CIDR, in 6443's certificate: k3s v0.8.0
// pkg/cli/server/server.go:152-156), and from Rancher 2.14 rancher-internal, which downstream
// clusters' agents reach the internal listener by (rancher/rancher v2.14.0 pkg/tls/tls.go:117-128,
// pkg/rancher/rancher.go:722-781; rancher#54407).
var (
	KubernetesService = ObjectKey{"default", "kubernetes"}
	InternalService   = ObjectKey{"cattle-system", "rancher-internal"}
	NamedServices     = []ObjectKey{KubernetesService, InternalService}
)

// InternalCertSecret is the internal listener's certificate, as the secret source names it.
const InternalCertSecret = "cattle-system/tls-rancher-internal/tls.crt"

// Name is a name a certificate must cover, and who reaches the server by it.
type Name struct{ Name, By string }

// ListenerNames are the names clients reach 6443 by, which its certificate must cover: the
// kubeconfig's host (localhost on k3s v0.8, 127.0.0.1 from v1.17: v0.8.0
// pkg/server/server.go:214-218, v1.17.2 pkg/server/server.go:238-242), localhost, and the
// kubernetes Service's address, when known.
func (p Profile) ListenerNames(kubernetesIP string) []Name {
	names := []Name{{"localhost", "local clients"}}
	if !p.ListenerConfig {
		names = append([]Name{{"127.0.0.1", "the admin kubeconfig"}}, names...)
	} else {
		names[0].By = "the admin kubeconfig"
	}
	if kubernetesIP != "" {
		names = append(names, Name{kubernetesIP, "pods, through the kubernetes Service"})
	}
	return names
}

// InternalNames are the names the internal listener's certificate must cover: the
// rancher-internal Service's address, when the server has that Service (2.14 and later).
func InternalNames(internalIP string) []Name {
	if internalIP == "" {
		return nil
	}
	return []Name{{internalIP, "downstream agents, through the rancher-internal Service"}}
}

// UINames are the names the UI certificate must cover: the host of server-url, which agents and
// browsers reach the server by.
func UINames(serverURL string) []Name {
	u, err := url.Parse(serverURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	return []Name{{u.Hostname(), "agents and browsers, through server-url"}}
}
