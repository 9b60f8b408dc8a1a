package rancher

import (
	"path"
	"strings"
	"time"
)

// k3sFile is a certificate file k3s writes and renews, relative to /var/lib/rancher/k3s, with the
// k3s versions that do: from `from` (inclusive) to `until` (exclusive; zero: still). Where a
// change reached several release lines in one monthly release, `gates` names the first version
// of each line that has it; the lines after the last gate have it from their first release.
type k3sFile struct {
	path  string
	ca    bool
	agent bool // written by the agent, which Rancher runs from 2.5
	from  release
	gates []release
	until release
}

// k3sFiles are the certificate files of each k3s release, from the k3s source at its tags
// (rancher/k3s for v0.8 to v1.21; later lines from the k3s-io/k3s pull requests that changed them).
// The server's: pkg/daemons/control/server.go (genCerts) up to v1.19, deps/deps.go after;
// the agent's: pkg/agent/config/config.go; the listener cache: pkg/cluster/https.go.
var k3sFiles = []k3sFile{
	// v0.8.0 server.go:251-285; one year for the leaves, ten for the CAs.
	{path: "server/tls/server-ca.crt", ca: true},
	{path: "server/tls/client-ca.crt", ca: true},
	{path: "server/tls/request-header-ca.crt", ca: true},
	{path: "server/tls/client-admin.crt"},
	{path: "server/tls/client-auth-proxy.crt"},
	{path: "server/tls/client-controller.crt"},
	{path: "server/tls/client-kube-apiserver.crt"},
	{path: "server/tls/client-scheduler.crt"},
	{path: "server/tls/serving-kube-apiserver.crt"},
	// From v1.32.1 the agent makes these keys and has the server sign them on request
	// (k3s-io/k3s#11471); the server's own copies are left, and v1.35 deletes them
	// (deps.go cleanupLegacyCerts).
	{path: "server/tls/client-kube-proxy.crt", until: release{1, 32, 1}},
	{path: "server/tls/client-k3s-controller.crt", from: release{1, 17, 0}, until: release{1, 32, 1}},
	// v1.17.2 server.go ClientCloudControllerCert; renamed in v1.21.2.
	{path: "server/tls/client-cloud-controller.crt", from: release{1, 17, 0}, until: release{1, 21, 2}},
	{path: "server/tls/client-k3s-cloud-controller.crt", from: release{1, 21, 2}},
	// The 6443 listener's cache, mirrored in kube-system/k3s-serving (v1.17.2 https.go:76-80).
	{path: "server/tls/dynamic-cert.json", from: release{1, 17, 0}},
	// Embedded etcd's, written whether etcd runs or not (v1.19.8 server.go:486, genETCDCerts).
	{path: "server/tls/etcd/server-ca.crt", ca: true, from: release{1, 19, 0}},
	{path: "server/tls/etcd/peer-ca.crt", ca: true, from: release{1, 19, 0}},
	{path: "server/tls/etcd/server-client.crt", from: release{1, 19, 0}},
	{path: "server/tls/etcd/peer-server-client.crt", from: release{1, 19, 0}},
	{path: "server/tls/etcd/client.crt", from: release{1, 19, 0}},
	// The CAs without their chain, for the controller-manager's signer (deps.go SigningClientCA).
	{path: "server/tls/client-ca.nochain.crt", ca: true, from: release{1, 26, 0}},
	{path: "server/tls/server-ca.nochain.crt", ca: true, from: release{1, 26, 0}},
	// The supervisor's own client certificate (k3s-io/k3s#7616, the June 2023 releases).
	{path: "server/tls/client-supervisor.crt", gates: []release{{1, 25, 11}, {1, 26, 6}, {1, 27, 3}}},
	// kube-scheduler's and kube-controller-manager's serving certificates, signed by the server
	// CA (k3s-io/k3s#12172, v1.33.1).
	{path: "server/tls/kube-scheduler/kube-scheduler.crt", from: release{1, 33, 1}},
	{path: "server/tls/kube-controller-manager/kube-controller-manager.crt", from: release{1, 33, 1}},
	// The agent's, at the top of its directory (v1.17.2 config.go:322-389).
	{path: "agent/client-ca.crt", ca: true, agent: true},
	{path: "agent/server-ca.crt", ca: true, agent: true},
	{path: "agent/client-kubelet.crt", agent: true},
	{path: "agent/serving-kubelet.crt", agent: true},
	{path: "agent/client-kube-proxy.crt", agent: true},
	{path: "agent/client-k3s-controller.crt", agent: true, from: release{1, 17, 0}},
}

// written tells whether k3s of release r writes the file.
func (f k3sFile) written(r release, agent bool) bool {
	if f.agent && !agent || r.less(f.from) || f.until != (release{}) && !r.less(f.until) {
		return false
	}
	if len(f.gates) == 0 {
		return true
	}
	for _, g := range f.gates {
		if r[0] == g[0] && r[1] == g[1] {
			return r.atLeast(g)
		}
	}
	last := f.gates[len(f.gates)-1]
	return r.atLeast(release{last[0], last[1] + 1, 0})
}

// Class is what a certificate file of a Rancher container is to its release.
type Class string

const (
	ClassCA            Class = "ca"             // a CA k3s writes (ten years, never renewed)
	ClassLeaf          Class = "leaf"           // a leaf k3s writes and renews (or not) per release
	ClassListenerCache Class = "listener-cache" // dynamic-cert.json, the 6443 certificate's cache
	// ClassUnused: a file an earlier release's k3s wrote, which this release's k3s neither
	// writes nor renews.
	ClassUnused Class = "unused"
	// ClassLegacy: management-state/tls, left by Rancher 2.0–2.2's embedded Kubernetes; unused
	// since 2.3.
	ClassLegacy Class = "legacy"
	// ClassOther: not in a location of k3s's own certificates.
	ClassOther Class = "other"
	// ClassInCluster: kept as a secret of the embedded cluster (InClusterCerts says by whom).
	ClassInCluster Class = "in-cluster"
	// ClassServingSecret: kube-system/k3s-serving, the mirror of the listener cache.
	ClassServingSecret Class = "serving-secret"
	// ClassListenerConfig: 2.3's 6443 certificate, kept in the ListenerConfig.
	ClassListenerConfig Class = "listener-config"
	// ClassUI: the chain the UI serves; ClassCACerts: a certificate of the cacerts setting;
	// ClassDownstream: a certificate of a cluster the server manages; ClassHostFile: a
	// certificate file on the host.
	ClassUI         Class = "ui"
	ClassCACerts    Class = "cacerts"
	ClassDownstream Class = "downstream"
	ClassHostFile   Class = "host-file"
)

// Serves6443 tells whether a certificate of the class is what 6443 serves.
func (c Class) Serves6443() bool { return c == ClassListenerCache || c == ClassListenerConfig }

// Rotation is what a rotation does for a certificate.
type Rotation int

const (
	// RotationNone: a rotation does not renew it.
	RotationNone Rotation = iota
	// RotationAlways: a rotation renews it (k3s's leaves, listener cache and listener
	// certificate; the serving secret where k3s reloads it).
	RotationAlways
	// RotationOwnerLate: a rotation has its owner issue it anew when the owner will not renew
	// it in time (Rancher's in-cluster certificates).
	RotationOwnerLate
)

// Unused tells whether nothing of the release uses a file of this class.
func (c Class) Unused() bool { return c == ClassUnused || c == ClassLegacy }

// Classification is a certificate's role, decided once when its source is read: what it is to
// the container's release (for an unused file, which k3s last wrote it), who renews it and how
// long before expiry, and what a rotation does for it.
type Classification struct {
	Class  Class
	LeftBy string // e.g. "k3s before v1.32.1"
	// Owner renews an in-cluster certificate this long before expiry; 0: never (or not known).
	Owner       string
	RenewWithin time.Duration
	Rotation    Rotation
}

// RotationRenews tells whether a rotation with strategy auto renews a certificate that expires
// in left.
func (c Classification) RotationRenews(left time.Duration) bool {
	switch c.Rotation {
	case RotationAlways:
		return true
	case RotationOwnerLate:
		return !c.OwnerOnTime(left)
	}
	return false
}

// Classify tells what a certificate file (an absolute path in the container) is to the profile's
// release. isCA is whether its certificate is a CA, for files no table names. A file is unused
// only when the table knows an earlier k3s wrote it and this one does not; without a known k3s
// release, nothing is unused.
func (p Profile) Classify(file string, isCA bool) Classification {
	switch class := ClassOf(file, isCA); class {
	case ClassLegacy:
		return Classification{Class: class, LeftBy: "Rancher 2.0–2.2"}
	case ClassOther:
		return Classification{Class: class}
	}
	rel := strings.TrimPrefix(file, k3sDir+"/")
	if r, ok := p.k3sRelease(); ok {
		for _, f := range k3sFiles {
			if f.path != rel {
				continue
			}
			if !f.written(r, p.agent()) {
				return Classification{Class: ClassUnused, LeftBy: f.lastWriter()}
			}
			break
		}
	}
	c := Classification{Class: ClassOf(file, isCA)}
	if c.Class == ClassLeaf || c.Class == ClassListenerCache {
		c.Rotation = RotationAlways
	}
	return c
}

// ClassOf is what a certificate file is, whatever the release: Rancher 2.0–2.2's, not k3s's, or
// k3s's listener cache, a CA or a leaf. Classify adds what the release does with it.
func ClassOf(file string, isCA bool) Class {
	switch {
	case strings.HasPrefix(file, ManagementTLSDir+"/"):
		return ClassLegacy
	case !InK3sLocation(file):
		return ClassOther
	case IsListenerCache(file):
		return ClassListenerCache
	case isCA:
		return ClassCA
	}
	return ClassLeaf
}

// lastWriter names the k3s releases that write a file this release does not.
func (f k3sFile) lastWriter() string {
	if f.until != (release{}) {
		return "k3s before v" + f.until.String()
	}
	return "an earlier k3s"
}

// Files lists the certificate files the profile's k3s writes, as absolute paths, CAs marked: what
// a container of this release holds after its first start. Nil when the release is unknown.
func (p Profile) Files() map[string]bool {
	r, ok := p.k3sRelease()
	if !ok {
		return nil
	}
	out := map[string]bool{}
	for _, f := range k3sFiles {
		if f.written(r, p.agent()) {
			out[path.Join(k3sDir, f.path)] = f.ca
		}
	}
	return out
}

// agent tells whether the profile's Rancher runs k3s's agent.
func (p Profile) agent() bool {
	for _, l := range p.Locations {
		if l.Dir == AgentDir {
			return true
		}
	}
	return false
}
