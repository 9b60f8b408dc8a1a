package rancher

import (
	"strings"
	"time"
)

// Renewal is what a start of the container does to k3s's leaf certificates.
type Renewal string

const (
	// RenewalNever: k3s before v0.10 (Rancher 2.3) never renews a certificate.
	RenewalNever Renewal = "never"
	// RenewalOnStart: k3s renews every leaf that is expired or expires within its window
	// when it starts, and only then.
	RenewalOnStart Renewal = "on-start"
	// RenewalUnknown: the version is unknown; nothing is assumed to renew.
	RenewalUnknown Renewal = "unknown"
)

// Profile is what a container's release does with its certificates, and where it keeps them.
type Profile struct {
	Versions
	Renewal Renewal
	// Window is how long before expiry a start renews a leaf; 0 unless Renewal is on-start.
	Window time.Duration
	// ServingWindow is the same for the 6443 serving certificate (dynamic-cert.json, mirrored
	// in the kube-system/k3s-serving secret). k3s before v1.19 reloads it from that secret and
	// never renews it on start: 0 there.
	ServingWindow time.Duration
	// ListenerConfig: the 6443 listener keeps its certificate in the ListenerConfig object
	// kube-system/tls-config, not in a file, and mints it again only for a new server CA (k3s
	// before v1.17: Rancher 2.3; k3s v0.8.0 pkg/tls/storage.go).
	ListenerConfig bool
	Locations      []Location
	// k3s is the k3s release the container runs: the one it reports, else the one its Rancher
	// release embeds; known tells whether there is one.
	k3s   release
	known bool
}

// k3sRelease is the k3s release the container runs, when known.
func (p Profile) k3sRelease() (release, bool) { return p.k3s, p.known }

// Location is a place a release keeps certificate files in.
type Location struct {
	Dir string
	// Files, when set, names the only files read, directly in Dir; otherwise Dir is read
	// whole, subdirectories included. The agent directory also holds containerd's state
	// (gigabytes on a real server), so only its certificates are ever fetched.
	Files []string
	// Optional locations may be missing: a release or an install may not have them.
	Optional bool
	// K3s locations hold k3s's own certificates, which a start re-issues when missing. The
	// rotation acts on these only.
	K3s bool
}

// Path of a file of the location.
func (l Location) Path(name string) string { return l.Dir + "/" + name }

// Where releases keep certificates.
var (
	serverTLS = Location{Dir: ServerTLSDir, K3s: true}
	// agentCerts are the certificates k3s's agent keeps at the top of its directory; a start
	// re-issues the leaves among them from the keys beside them.
	agentCerts = Location{Dir: AgentDir, Optional: true, K3s: true, Files: []string{
		"client-ca.crt", "server-ca.crt", "client-kubelet.crt", "serving-kubelet.crt",
		"client-kube-proxy.crt", "client-k3s-controller.crt",
	}}
	// legacyTLS is where Rancher 2.0–2.2's embedded Kubernetes kept its certificates
	// (localhost.crt, token-node.crt); servers upgraded into 2.3 still have them, and keep them
	// through every upgrade after (nothing deletes them), so every release reads it: a leftover
	// stays visible, as unused.
	legacyTLS = Location{Dir: ManagementTLSDir, Optional: true}
)

// line is a range of Rancher releases that behave alike, from its first release on.
type line struct {
	from  release
	k3s   string // what its first release embeds
	agent bool   // k3s runs its agent (--disable-agent was dropped in 2.5.0)
}

// lines are the Rancher releases with an embedded k3s, oldest first, from each release's
// package/Dockerfile (ENV CATTLE_K3S_VERSION). Embedded etcd (server/tls/etcd) appears from
// 2.6.3 inside server/tls, which is read whole.
var lines = []line{
	{from: release{2, 3, 0}, k3s: "v0.8.0"},
	{from: release{2, 4, 0}, k3s: "v1.17.2+k3s1"},
	{from: release{2, 5, 0}, k3s: "v1.18.8+k3s1", agent: true},
	{from: release{2, 5, 8}, k3s: "v1.19.8+k3s1", agent: true},
	{from: release{2, 6, 0}, k3s: "v1.21.3+k3s1", agent: true},
	{from: release{2, 11, 15}, k3s: "v1.32.13+k3s1", agent: true},
	{from: release{2, 12, 0}, k3s: "v1.33.1+k3s1", agent: true},
	// rancher/rancher v2.13.0 package/Dockerfile: CATTLE_K3S_VERSION=v1.34.1+k3s1 (v1.34.8 from
	// 2.13.7); v2.14.0: v1.35.1+k3s1 (v1.35.4 from 2.14.1, v1.35.5 from 2.14.3).
	{from: release{2, 13, 0}, k3s: "v1.34.1+k3s1", agent: true},
	{from: release{2, 14, 0}, k3s: "v1.35.1+k3s1", agent: true},
}

// ProfileOf tells what a release does. What the container reports of its k3s decides the
// renewal; otherwise the k3s its Rancher release embeds. Without a known release nothing is
// assumed: renewal unknown, every location read.
func ProfileOf(v Versions) Profile {
	p := Profile{Versions: v, Renewal: RenewalUnknown,
		Locations: []Location{serverTLS, agentCerts, legacyTLS}}
	k3s := v.K3s
	if r, ok := parseRelease(v.Rancher); ok {
		if l, ok := lineOf(r); ok {
			p.Locations = []Location{serverTLS}
			if l.agent {
				p.Locations = append(p.Locations, agentCerts)
			}
			p.Locations = append(p.Locations, legacyTLS)
			if k3s == "" {
				k3s = l.k3s
			}
		}
	}
	if r, ok := parseRelease(k3s); ok {
		p.Renewal, p.Window, p.ServingWindow = k3sRenewal(r)
		p.ListenerConfig = r.less(release{1, 17, 0})
		p.k3s, p.known = r, true
	}
	return p
}

func lineOf(r release) (line, bool) {
	if r.less(lines[0].from) {
		return line{}, false // before 2.3 Rancher embedded no k3s
	}
	l := lines[0]
	for _, next := range lines[1:] {
		if r.atLeast(next.from) {
			l = next
		}
	}
	return l, true
}

const day = 24 * time.Hour

// k3sRenewal is k3s's renewal on start: none before v0.10 (k3s#805); within 90 days, or 120
// from the May 2025 releases (v1.30.13, v1.31.9, v1.32.5, v1.33.1; k3s#12232). The serving
// certificate is renewed alike from v1.19; before, the listener reloads it from its secret.
func k3sRenewal(r release) (Renewal, time.Duration, time.Duration) {
	if r.less(release{0, 10, 0}) {
		return RenewalNever, 0, 0
	}
	window := 90 * day
	for _, gate := range []release{{1, 30, 13}, {1, 31, 9}, {1, 32, 5}, {1, 33, 1}} {
		if r[0] == gate[0] && r[1] == gate[1] && r.atLeast(gate) {
			window = 120 * day
		}
	}
	if r.atLeast(release{1, 34, 0}) {
		window = 120 * day
	}
	serving := window
	if r.less(release{1, 19, 0}) {
		serving = 0
	}
	return RenewalOnStart, window, serving
}

// RenewsOnStart tells whether a start of the container renews the k3s certificate at path,
// which expires in left.
func (p Profile) RenewsOnStart(path string, left time.Duration) bool {
	window := p.Window
	if IsListenerCache(path) {
		window = p.ServingWindow
	}
	return p.Renewal == RenewalOnStart && window > 0 && left < window
}

// K3sLocations are the profile's locations that hold k3s's own certificates.
func (p Profile) K3sLocations() []Location {
	var out []Location
	for _, l := range p.Locations {
		if l.K3s {
			out = append(out, l)
		}
	}
	return out
}

// ServingFromSecret tells whether the 6443 listener reloads its certificate from the
// kube-system/k3s-serving secret at start (k3s v0.10 to v1.18: Rancher 2.4 to 2.5.7), so that
// removing dynamic-cert.json alone does not renew it.
func (p Profile) ServingFromSecret() bool {
	return p.Renewal == RenewalOnStart && p.ServingWindow == 0
}

// InK3sLocation tells whether path is a file of a location holding k3s's certificates, in
// any release: under server/tls, or one of the agent's certificate files.
func InK3sLocation(p string) bool {
	if strings.HasPrefix(p, serverTLS.Dir+"/") {
		return true
	}
	for _, name := range agentCerts.Files {
		if p == agentCerts.Path(name) {
			return true
		}
	}
	return false
}

// ServingSecret is where the 6443 serving certificate is mirrored in the embedded cluster.
var ServingSecret = ObjectKey{"kube-system", "k3s-serving"}
