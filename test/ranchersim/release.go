package main

import (
	"net"
	"regexp"
	"strconv"
)

// k3sRelease is what the embedded k3s of an image does with its certificates, from its version
// (CATTLE_K3S_VERSION), modelled on the k3s source at each tag (rancher/k3s up to v1.21; later
// lines from k3s-io/k3s's pull requests). Paths are relative to /var/lib/rancher/k3s.
type k3sRelease struct {
	version [3]int
	// listenerConfig: the 6443 listener keeps its certificate in the ListenerConfig object
	// kube-system/tls-config (k3s v0.8.0 pkg/tls/storage.go), not in a file.
	listenerConfig bool
	// servingSecret: the listener's certificate is cached in server/tls/dynamic-cert.json and
	// mirrored in kube-system/k3s-serving (v1.17.2 pkg/cluster/https.go:76-80).
	servingSecret bool
	// servingFromSecret: the listener reloads its certificate from that secret at start and
	// never renews it (before v1.19, whose dynamiclistener renews it in its window).
	servingFromSecret bool
	// basicAuthKubeconfig: /etc/rancher/k3s/k3s.yaml authenticates with the admin password of
	// server/cred/passwd (v0.8.0 pkg/server/server.go:212-236, v1.18.8 pkg/server/server.go:232-260);
	// from v1.19 with client-admin's certificate (v1.19.8 pkg/server/server.go:291).
	basicAuthKubeconfig bool
	// kubeconfigHost is the server's host in k3s.yaml: localhost in v0.8
	// (pkg/server/server.go:214-218), 127.0.0.1 from v1.17 (pkg/server/server.go:238-242).
	kubeconfigHost string
}

var versionPattern = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)

func releaseOf(version string) k3sRelease {
	var r k3sRelease
	if m := versionPattern.FindStringSubmatch(version); m != nil {
		for i := range r.version {
			r.version[i], _ = strconv.Atoi(m[i+1])
		}
	}
	r.listenerConfig = r.before(1, 17, 0)
	r.servingSecret = !r.listenerConfig
	r.servingFromSecret = r.servingSecret && r.before(1, 19, 0)
	r.basicAuthKubeconfig = r.before(1, 19, 0)
	r.kubeconfigHost = "127.0.0.1"
	if r.listenerConfig {
		r.kubeconfigHost = "localhost"
	}
	return r
}

func (r k3sRelease) before(major, minor, patch int) bool {
	o := [3]int{major, minor, patch}
	for i := range r.version {
		if r.version[i] != o[i] {
			return r.version[i] < o[i]
		}
	}
	return false
}

// atLeastOnLine: v is at least the gate of its minor line, or on a later line than every gate
// (k3s backports a change to the supported lines in one monthly release).
func (r k3sRelease) atLeastOnLine(gates ...[3]int) bool {
	for _, g := range gates {
		if r.version[0] == g[0] && r.version[1] == g[1] {
			return !r.before(g[0], g[1], g[2])
		}
	}
	last := gates[len(gates)-1]
	return !r.before(last[0], last[1]+1, 0)
}

type caFile struct {
	file, cn string
}

type leafFile struct {
	file, ca string
	spec     leafSpec
}

// cas are the CAs k3s writes (pkg/daemons/control/server.go genCerts up to v1.19,
// deps/deps.go after): server, client and request-header from the start; embedded etcd's from
// v1.19, written whether etcd runs or not (v1.19.8 server.go:486 calls genETCDCerts always).
func (r k3sRelease) cas() []caFile {
	out := []caFile{
		{file: "server/tls/server-ca", cn: "k3s-server-ca"},
		{file: "server/tls/client-ca", cn: "k3s-client-ca"},
		{file: "server/tls/request-header-ca", cn: "k3s-request-header-ca"},
	}
	if !r.before(1, 19, 0) {
		out = append(out, caFile{file: "server/tls/etcd/server-ca", cn: "etcd-server-ca"}, caFile{file: "server/tls/etcd/peer-ca", cn: "etcd-peer-ca"})
	}
	return out
}

// nochainCopies: from v1.26 the server and client CAs are also written without their chain,
// for the controller-manager's signer (deps.go genClientCerts: SigningClientCA).
func (r k3sRelease) nochainCopies() bool { return !r.before(1, 26, 0) }

var apiServerSANs = leafSpec{
	cn: "kube-apiserver", server: true,
	dns: []string{"kubernetes.default.svc", "kubernetes.default", "kubernetes", "localhost"},
	ips: []net.IP{net.ParseIP("10.43.0.1"), net.ParseIP("127.0.0.1")},
}

// serverLeaves are the leaves k3s writes under server/tls, each signed by its CA.
func (r k3sRelease) serverLeaves() []leafFile {
	out := []leafFile{
		{file: "server/tls/client-admin", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:admin", orgs: []string{"system:masters"}}},
		{file: "server/tls/client-auth-proxy", ca: "server/tls/request-header-ca", spec: leafSpec{cn: "system:auth-proxy"}},
		{file: "server/tls/client-controller", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-controller-manager"}},
		{file: "server/tls/client-kube-apiserver", ca: "server/tls/client-ca", spec: leafSpec{cn: "kube-apiserver"}},
		{file: "server/tls/client-scheduler", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-scheduler"}},
		{file: "server/tls/serving-kube-apiserver", ca: "server/tls/server-ca", spec: apiServerSANs},
	}
	// From v1.32.1 the agent creates these keys and has the server sign them on request
	// (k3s-io/k3s#11471): the server no longer writes its own copies.
	if r.before(1, 32, 1) {
		out = append(out, leafFile{file: "server/tls/client-kube-proxy", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}})
		if !r.listenerConfig {
			// v1.17.2 pkg/daemons/control/server.go: ClientK3sControllerCert
			out = append(out, leafFile{file: "server/tls/client-k3s-controller", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:k3s-controller"}})
		}
	}
	if !r.listenerConfig {
		// Renamed in v1.21.2 (pkg/daemons/control/server.go ClientCloudControllerCert).
		name := "server/tls/client-cloud-controller"
		if !r.before(1, 21, 2) {
			name = "server/tls/client-k3s-cloud-controller"
		}
		out = append(out, leafFile{file: name, ca: "server/tls/client-ca", spec: leafSpec{cn: "k3s-cloud-controller-manager"}})
	}
	// The supervisor's own client certificate (k3s-io/k3s#7616, the June 2023 releases).
	if r.atLeastOnLine([3]int{1, 25, 11}, [3]int{1, 26, 6}, [3]int{1, 27, 3}) {
		out = append(out, leafFile{file: "server/tls/client-supervisor", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:k3s-supervisor", orgs: []string{"system:masters"}}})
	}
	if !r.before(1, 19, 0) {
		etcdSANs := leafSpec{server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}
		server, peer := etcdSANs, etcdSANs
		server.cn, peer.cn = "etcd-server", "etcd-peer"
		out = append(out,
			leafFile{file: "server/tls/etcd/server-client", ca: "server/tls/etcd/server-ca", spec: server},
			leafFile{file: "server/tls/etcd/peer-server-client", ca: "server/tls/etcd/peer-ca", spec: peer},
			leafFile{file: "server/tls/etcd/client", ca: "server/tls/etcd/server-ca", spec: leafSpec{cn: "etcd-client"}})
	}
	// The serving certificates of kube-scheduler and kube-controller-manager, signed by the
	// server CA (k3s-io/k3s#12172, from v1.33.1).
	if !r.before(1, 33, 1) {
		out = append(out,
			leafFile{file: "server/tls/kube-scheduler/kube-scheduler", ca: "server/tls/server-ca", spec: leafSpec{cn: "kube-scheduler", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
			leafFile{file: "server/tls/kube-controller-manager/kube-controller-manager", ca: "server/tls/server-ca", spec: leafSpec{cn: "kube-controller-manager", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}})
	}
	return out
}

// agentLeaves are what the agent keeps at the top of its directory (pkg/agent/config/config.go
// getNodeNamedHostFile and friends): its kubelet's and kube-proxy's certificates, and from
// v1.17 the k3s controller's.
func (r k3sRelease) agentLeaves() []leafFile {
	out := []leafFile{
		{file: "agent/client-kubelet", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:node:local-node", orgs: []string{"system:nodes"}}},
		{file: "agent/serving-kubelet", ca: "server/tls/server-ca", spec: leafSpec{cn: "local-node", server: true, dns: []string{"local-node", "localhost"}}},
		{file: "agent/client-kube-proxy", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:kube-proxy", orgs: []string{"system:nodes"}}},
	}
	if !r.listenerConfig {
		out = append(out, leafFile{file: "agent/client-k3s-controller", ca: "server/tls/client-ca", spec: leafSpec{cn: "system:k3s-controller"}})
	}
	return out
}

// serverKeys are the keys the server keeps without a certificate of its own: the kubelet's
// (v0.8.0 server.go genClientCerts, genServerCerts), and from v1.32.1 kube-proxy's and the k3s
// controller's, which the agent has signed on request (k3s-io/k3s#11471).
func (r k3sRelease) serverKeys() []string {
	out := []string{"server/tls/client-kubelet.key", "server/tls/serving-kubelet.key"}
	if !r.before(1, 32, 1) {
		out = append(out, "server/tls/client-kube-proxy.key", "server/tls/client-k3s-controller.key")
	}
	return out
}

// cleanedUp are leftovers k3s deletes at start: from v1.35 the server-side kube-proxy and
// k3s-controller certificates that v1.32.1 stopped writing (deps.go cleanupLegacyCerts).
func (r k3sRelease) cleanedUp() []string {
	if r.before(1, 35, 0) {
		return nil
	}
	return []string{"server/tls/client-kube-proxy", "server/tls/client-k3s-controller"}
}
