package autorotate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) // a Friday
	day := 24 * time.Hour
	v23 := rancher.Container{Name: "rancher", State: container.StateRunning,
		Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.3.2", K3s: "v0.8.0"})}
	v24 := v23
	v24.Profile = rancher.ProfileOf(rancher.Versions{Rancher: "v2.4.8", K3s: "v1.17.2+k3s1"})
	v260, v275 := v23, v23
	v260.Profile = rancher.ProfileOf(rancher.Versions{Rancher: "v2.6.0", K3s: "v1.21.3+k3s1"})
	v275.Profile = rancher.ProfileOf(rancher.Versions{Rancher: "v2.7.5", K3s: "v1.26.4+k3s1"})
	stopped := v23
	stopped.State = container.StateExited
	crashLoop := v23
	crashLoop.State = container.StateRestarting
	cert := func(source, p string, left time.Duration, ca bool) model.CertFile {
		return model.CertFile{Container: "rancher", Source: source, Path: p, Cert: &certs.Info{IsCA: ca, NotAfter: now.Add(left)}}
	}
	tls := rancher.ServerTLSDir + "/"
	leaf := func(left time.Duration) []model.CertFile {
		return []model.CertFile{
			cert(model.SourceK3s, tls+"server-ca.crt", day, true), // a CA: not what a rotation renews
			cert(model.SourceK3s, rancher.ManagementTLSDir+"/localhost.crt", day, false),
			cert(model.SourceUI, "127.0.0.1:443", day, false),
			cert(model.SourceK3s, tls+"client-admin.crt", left, false),
			cert(model.SourceK3s, tls+"serving-kube-apiserver.crt", left+time.Hour, false),
		}
	}
	sunday, _ := ParseWindow("Sun 02:00-04:00 UTC")
	opening := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	cfg := func(w Window) Config { return Config{Mode: On, Before: 14 * day, Window: w, Backoff: day} }
	for _, tc := range []struct {
		name        string
		c           rancher.Container
		certs       []model.CertFile
		cfg         Config
		lastFailure time.Time
		action      string
		at          time.Time
		path, says  string
	}{
		{"not due", v23, leaf(30 * day), cfg(Window{}), time.Time{}, None, time.Time{}, "client-admin.crt", "client-admin.crt, expires 2026-12-27 12:00 UTC, not within 14d"},
		{"due, any time", v23, leaf(3 * day), cfg(Window{}), time.Time{}, Rotate, now, "client-admin.crt", "expires"},
		{"due, window closed", v23, leaf(3 * day), cfg(sunday), time.Time{}, Wait, opening, "client-admin.crt", "next opening of the window Sun 02:00-04:00 UTC"},
		{"expired, window closed", crashLoop, leaf(-2 * day), cfg(sunday), time.Time{}, Rotate, now, "client-admin.crt", "client-admin.crt expired 2026-11-25 12:00 UTC: the server is down, so the window does not wait"},
		{"stopped on purpose", stopped, leaf(3 * day), cfg(Window{}), time.Time{}, Skip, time.Time{}, "client-admin.crt", "container is exited"},
		{"backoff after a failure", v23, leaf(3 * day), cfg(Window{}), now.Add(-time.Hour), Wait, now.Add(23 * time.Hour), "client-admin.crt", "failed"},
		{"expired, backoff", crashLoop, leaf(-day), cfg(sunday), now.Add(-time.Hour), Wait, now.Add(23 * time.Hour), "client-admin.crt", "not before"},
		{"backoff over", v23, leaf(3 * day), cfg(Window{}), now.Add(-25 * time.Hour), Rotate, now, "client-admin.crt", "expires"},
		{"only CAs and others", v23, leaf(400 * day)[:3], cfg(Window{}), time.Time{}, None, time.Time{}, "", "no k3s certificate"},
		{"2.4 serving secret", v24, append(leaf(200*day), cert(model.SourceSecret, "kube-system/k3s-serving/tls.crt", 5*day, false)), cfg(Window{}), time.Time{}, Rotate, now, "kube-system/k3s-serving/tls.crt", "kube-system/k3s-serving expires"},
		{"2.3 has no serving secret to renew", v23, append(leaf(200*day), cert(model.SourceSecret, "kube-system/k3s-serving/tls.crt", 5*day, false)), cfg(Window{}), time.Time{}, None, time.Time{}, "client-admin.crt", ""},
		{"2.6.0's expired webhook: never renewed, the window does not wait", v260, append(leaf(200*day), cert(model.SourceSecret, "cattle-system/cattle-webhook-tls/tls.crt", -day, false)), cfg(sunday), time.Time{}, Rotate, now, "cattle-system/cattle-webhook-tls/tls.crt", "cattle-system/cattle-webhook-tls expired 2026-11-26 12:00 UTC: what depends on it fails now, so the window does not wait"},
		{"2.7's webhook renews itself 30 days ahead: its owner is late at 10", v275, append(leaf(200*day), cert(model.SourceSecret, "cattle-system/cattle-webhook-tls/tls.crt", 10*day, false)), cfg(Window{}), time.Time{}, Rotate, now, "cattle-system/cattle-webhook-tls/tls.crt", "expires"},
		{"2.7's webhook late but not yet due: named as a secret", v275, append(leaf(200*day), cert(model.SourceSecret, "cattle-system/cattle-webhook-tls/tls.crt", 20*day, false)), cfg(Window{}), time.Time{}, None, time.Time{}, "cattle-system/cattle-webhook-tls/tls.crt", "earliest certificate a rotation renews, cattle-system/cattle-webhook-tls, expires 2026-12-17 12:00 UTC, not within 14d"},
		{"2.3's expired 6443 certificate: the server is down", crashLoop, append(leaf(200*day), cert(model.SourceListener, model.ListenerPath, -day, false)), cfg(sunday), time.Time{}, Rotate, now, model.ListenerPath, "the ListenerConfig " + model.ListenerPath + " expired 2026-11-26 12:00 UTC: the server is down"},
		{"the UI certificate at 10 days: Rancher renews it at 7", v275, append(leaf(200*day), cert(model.SourceSecret, "cattle-system/serving-cert/tls.crt", 10*day, false)), cfg(Window{}), time.Time{}, None, time.Time{}, "client-admin.crt", ""},
		{"cattle-ca is never rotated", v275, append(leaf(200*day), cert(model.SourceSecret, "cattle-system/tls-rancher/tls.crt", 5*day, true)), cfg(Window{}), time.Time{}, None, time.Time{}, "client-admin.crt", ""},
		{"a secret of no known owner", v275, append(leaf(200*day), cert(model.SourceSecret, "default/mine/tls.crt", 5*day, false)), cfg(Window{}), time.Time{}, None, time.Time{}, "client-admin.crt", ""},
	} {
		d := decide(now, tc.c, classify(tc.c, tc.certs), tc.cfg, tc.lastFailure)
		if d.Action != tc.action || !d.At.Equal(tc.at) || d.Path != tc.path && !strings.HasSuffix(d.Path, "/"+tc.path) || !strings.Contains(d.Why, tc.says) {
			t.Errorf("%s: %+v; want %s at %s on %s saying %q", tc.name, d, tc.action, tc.at, tc.path, tc.says)
		}
	}
}

// classify gives each certificate its role for the container's release, as the collector's
// sources do.
func classify(c rancher.Container, files []model.CertFile) []model.CertFile {
	out := slices.Clone(files)
	for i, cf := range out {
		switch cf.Source {
		case model.SourceK3s:
			out[i].Class = c.Profile.Classify(cf.Path, cf.Cert.IsCA)
		case model.SourceSecret:
			out[i].Class = c.Profile.ClassifySecret(cf.Path)
		case model.SourceListener:
			out[i].Class = rancher.Classification{Class: rancher.ClassListenerConfig, Rotation: rancher.RotationAlways}
		case model.SourceUI:
			out[i].Class = rancher.Classification{Class: rancher.ClassUI}
		}
	}
	return out
}

// TestUnusedFileIsNeverDue: a file the release neither writes nor renews — here the cloud
// controller's certificate a 2.5 server left before its upgrade to 2.6 — is never due, however
// soon it expires; a rotation would not renew it.
func TestUnusedFileIsNeverDue(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	c := rancher.Container{Name: "rancher", State: container.StateRunning, Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.6.0", K3s: "v1.21.3+k3s1"})}
	tls := rancher.ServerTLSDir + "/"
	var files []model.CertFile
	for p, left := range map[string]time.Duration{tls + "client-cloud-controller.crt": 3 * day, tls + "client-admin.crt": 300 * day} {
		files = append(files, model.CertFile{Container: c.Name, Source: model.SourceK3s, Path: p, Cert: &certs.Info{NotAfter: now.Add(left)},
			Class: c.Profile.Classify(p, false)})
	}
	d := decide(now, c, files, Config{Mode: On, Before: 14 * day, Backoff: day}, time.Time{})
	if d.Action != None || d.Path != tls+"client-admin.crt" {
		t.Fatalf("decision %+v: the leftover must not make the server due", d)
	}
}
