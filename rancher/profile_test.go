package rancher

import (
	"strings"
	"testing"
	"time"
)

func TestDetectVersions(t *testing.T) {
	for _, tt := range []struct {
		name   string
		env    []string
		labels map[string]string
		image  string
		want   Versions
	}{
		{"environment of a 2.9 image", []string{"PATH=/usr/bin", "CATTLE_SERVER_VERSION=v2.9.3", "CATTLE_K3S_VERSION=v1.30.2+k3s2"}, nil, "rancher/rancher:stable",
			Versions{"v2.9.3", "v1.30.2+k3s2"}},
		{"2.3 has both variables", []string{"CATTLE_K3S_VERSION=v0.8.0", "CATTLE_SERVER_VERSION=v2.3.1"}, nil, "rancher/rancher:v2.3.1",
			Versions{"v2.3.1", "v0.8.0"}},
		{"label from 2.10 when the environment is overridden", []string{"CATTLE_SERVER_VERSION=", "CATTLE_K3S_VERSION=v1.31.1+k3s1"},
			map[string]string{"org.opencontainers.image.version": "v2.10.3"}, "rancher/rancher:latest", Versions{"v2.10.3", "v1.31.1+k3s1"}},
		{"tag as the last resort", nil, nil, "registry.example.com:5000/rancher/rancher:v2.5.7", Versions{Rancher: "v2.5.7"}},
		{"a dev build says nothing", []string{"CATTLE_SERVER_VERSION=master-head"}, nil, "rancher/rancher:master-head", Versions{}},
		{"stable tag says nothing", nil, nil, "rancher/rancher:stable", Versions{}},
		{"digest says nothing", nil, nil, "rancher/rancher@sha256:" + strings.Repeat("ab", 32), Versions{}},
		{"two-part version is not a release", []string{"CATTLE_SERVER_VERSION=v2.9"}, nil, "rancher/rancher", Versions{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectVersions(tt.env, tt.labels, tt.image); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestProfileOf checks each row of the field table (release Dockerfiles and k3s changes) at
// its edges. Every release reads management-state/tls: a server that began on 2.0–2.2 keeps it
// through every upgrade.
func TestProfileOf(t *testing.T) {
	const days = 24 * time.Hour
	type want struct {
		renewal       Renewal
		window, serve time.Duration
		agent, legacy bool
		every         bool
	}
	for _, tt := range []struct {
		v    Versions
		want want
	}{
		{Versions{"v2.3.1", "v0.8.0"}, want{renewal: RenewalNever, legacy: true}},
		{Versions{"v2.3.11", ""}, want{renewal: RenewalNever, legacy: true}},
		{Versions{"v2.4.0", "v1.17.2+k3s1"}, want{RenewalOnStart, 90 * days, 0, false, true, false}},
		{Versions{"v2.4.18", ""}, want{RenewalOnStart, 90 * days, 0, false, true, false}},
		{Versions{"v2.5.0", ""}, want{RenewalOnStart, 90 * days, 0, true, true, true}},
		{Versions{"v2.5.7", "v1.18.8+k3s1"}, want{RenewalOnStart, 90 * days, 0, true, true, true}},
		{Versions{"v2.5.8", "v1.19.8+k3s1"}, want{RenewalOnStart, 90 * days, 90 * days, true, true, true}},
		{Versions{"v2.6.3", "v1.21.7+k3s1"}, want{RenewalOnStart, 90 * days, 90 * days, true, true, true}},
		{Versions{"v2.11.14", "v1.32.1+k3s1"}, want{RenewalOnStart, 90 * days, 90 * days, true, true, true}},
		{Versions{"v2.11.15", ""}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.12.3", "v1.33.1+k3s1"}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.13.0", ""}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.13.8", "v1.34.8+k3s1"}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.14.0", "v1.35.1+k3s1"}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.14.4", ""}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		// The k3s the container reports decides the renewal: a patched 1.30 has 120 days.
		{Versions{"v2.9.3", "v1.30.13+k3s1"}, want{RenewalOnStart, 120 * days, 120 * days, true, true, true}},
		{Versions{"v2.9.3", "v1.30.12+k3s1"}, want{RenewalOnStart, 90 * days, 90 * days, true, true, true}},
		// Unknown: the careful case.
		{Versions{}, want{renewal: RenewalUnknown, agent: true, legacy: true, every: true}},
		{Versions{"v2.2.9", ""}, want{renewal: RenewalUnknown, agent: true, legacy: true, every: true}},
		{Versions{"", "v1.26.4+k3s1"}, want{RenewalOnStart, 90 * days, 90 * days, true, true, true}},
	} {
		p := ProfileOf(tt.v)
		var agent, legacy bool
		for _, l := range p.Locations {
			agent = agent || l.Dir == AgentDir
			legacy = legacy || l.Dir == ManagementTLSDir
		}
		got := want{p.Renewal, p.Window, p.ServingWindow, agent, legacy, len(p.Locations) == 3}
		if got != tt.want {
			t.Errorf("%+v: got %+v, want %+v", tt.v, got, tt.want)
		}
		if p.Locations[0].Dir != ServerTLSDir || p.Locations[0].Optional {
			t.Errorf("%+v: server/tls is not the first, required location", tt.v)
		}
	}
}

func TestRenewsOnStart(t *testing.T) {
	const days = 24 * time.Hour
	v24 := ProfileOf(Versions{"v2.4.8", "v1.17.2+k3s1"})
	v27 := ProfileOf(Versions{"v2.7.5", "v1.26.4+k3s1"})
	cache := ServerTLSDir + "/dynamic-cert.json"
	leaf := ServerTLSDir + "/client-admin.crt"
	for _, tt := range []struct {
		p    Profile
		path string
		left time.Duration
		want bool
	}{
		{v27, leaf, 89 * days, true},
		{v27, leaf, 91 * days, false},
		{v27, leaf, -time.Hour, true}, // expired: renewed too
		{v27, cache, 10 * days, true},
		{v24, leaf, 10 * days, true},
		{v24, cache, 10 * days, false}, // reloaded from the k3s-serving secret
		{v24, cache, -days, false},     // expired: still not renewed
		{ProfileOf(Versions{"v2.3.1", "v0.8.0"}), leaf, time.Hour, false},
		{ProfileOf(Versions{}), leaf, time.Hour, false},
	} {
		if got := tt.p.RenewsOnStart(tt.path, tt.left); got != tt.want {
			t.Errorf("%s %s left %s: %v, want %v", tt.p.Rancher, tt.path, tt.left, got, tt.want)
		}
	}
	if !v24.ServingFromSecret() || v27.ServingFromSecret() || ProfileOf(Versions{"v2.3.1", ""}).ServingFromSecret() {
		t.Error("ServingFromSecret is wrong")
	}
}

func TestInK3sLocation(t *testing.T) {
	for p, want := range map[string]bool{
		ServerTLSDir + "/client-admin.crt":      true,
		ServerTLSDir + "/etcd/client.crt":       true,
		AgentDir + "/client-kubelet.crt":        true,
		AgentDir + "/containerd/x.crt":          false,
		ManagementTLSDir + "/localhost.crt":     false,
		"/var/lib/rancher/k3s/server/db/x.crt":  false,
		ServerTLSDir:                            false,
		"/var/lib/rancher/k3s/server/tls-x.crt": false,
	} {
		if InK3sLocation(p) != want {
			t.Errorf("InK3sLocation(%s) = %v", p, !want)
		}
	}
}
