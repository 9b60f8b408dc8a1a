package model

import (
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// TestNamesEachCertificateMustCover: of a 2.14.0 server upgraded from 2.13, 6443's certificate
// covers the kubeconfig's host, localhost and the kubernetes Service; the internal listener's
// lacks the rancher-internal Service's ClusterIP (rancher/rancher#54407); the UI's covers the
// host of server-url. On 2.3 the kubeconfig names localhost, and without the Service's address
// only what is known is checked.
func TestNamesEachCertificateMustCover(t *testing.T) {
	info := func(sans ...string) *certs.Info { return &certs.Info{SANs: sans} }
	c214 := rancher.Container{Name: "r", Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.14.0"})}
	snap := Snapshot{Sources: []SourceResult{
		{Container: "r", Source: SourceK3s, Certs: []CertFile{
			{Container: "r", Source: SourceK3s, Path: rancher.ServerTLSDir + "/dynamic-cert.json", Cert: info("kubernetes", "localhost", "10.43.0.1", "127.0.0.1"), Class: rancher.Classification{Class: rancher.ClassListenerCache}},
			{Container: "r", Source: SourceK3s, Path: rancher.ServerTLSDir + "/client-admin.crt", Cert: info(), Class: rancher.Classification{Class: rancher.ClassLeaf}},
		}},
		{Container: "r", Source: SourceSecret, Certs: []CertFile{
			{Container: "r", Source: SourceSecret, Path: rancher.InternalCertSecret, Cert: info("localhost", "127.0.0.1", "10.43.12.7"), Class: rancher.Classification{Class: rancher.ClassInCluster}},
			{Container: "r", Source: SourceSecret, Path: "cattle-system/serving-cert/tls.crt", Cert: info("rancher.local"), Class: rancher.Classification{Class: rancher.ClassInCluster}},
		}},
		{Container: "r", Source: SourceUI, Certs: []CertFile{{Container: "r", Source: SourceUI, Path: "https://127.0.0.1:443", Cert: info("*.example.com"), Class: rancher.Classification{Class: rancher.ClassUI}}}},
		{Container: "r", Source: SourceSetting, Settings: &Settings{ServerURL: "https://rancher.example.com"}},
		{Container: "r", Source: SourceService, Services: map[string]string{"default/kubernetes": "10.43.0.1", "cattle-system/rancher-internal": "10.43.187.204"}},
	}}
	got := map[string][]string{}
	for _, n := range NamesOf(snap, c214) {
		var missing []string
		for _, m := range n.Missing {
			missing = append(missing, m.Name)
		}
		got[n.Source+" "+n.Path] = missing
	}
	want := map[string][]string{
		"k3s " + rancher.ServerTLSDir + "/dynamic-cert.json": nil,
		"secret " + rancher.InternalCertSecret:               {"10.43.187.204"},
		"ui https://127.0.0.1:443":                           nil, // a wildcard covers the host
	}
	if len(got) != len(want) {
		t.Fatalf("checked %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || strings.Join(g, ",") != strings.Join(w, ",") {
			t.Errorf("%s: missing %v, want %v", k, g, w)
		}
	}

	c23 := rancher.Container{Name: "old", Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.3.1"})}
	snap = Snapshot{Sources: []SourceResult{{Container: "old", Source: SourceListener, Certs: []CertFile{
		{Container: "old", Source: SourceListener, Path: "kube-system/tls-config", Cert: info("localhost"), Class: rancher.Classification{Class: rancher.ClassListenerConfig}}}}}}
	checks := NamesOf(snap, c23)
	if len(checks) != 1 || !checks[0].Covered() || len(checks[0].Names) != 1 || checks[0].Names[0].Name != "localhost" {
		t.Errorf("2.3's listener without the kubernetes Service's address: %+v", checks)
	}
}
