package web

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

const day = 24 * time.Hour

func cert(name, source, path string, left time.Duration, ca bool, now time.Time) model.CertFile {
	return model.CertFile{Container: name, Source: source, Path: path,
		Cert: &certs.Info{SubjectCN: path, NotBefore: now.Add(-300 * day), NotAfter: now.Add(left), IsCA: ca}}
}

// classified classifies the k3s files of a snapshot against their container's release, as the
// collector does.
func classified(snap model.Snapshot) model.Snapshot {
	for _, c := range snap.Containers {
		for i, s := range snap.Sources {
			for j, cf := range s.Certs {
				if cf.Container != c.Name {
					continue
				}
				switch cf.Source { // as the collector's sources classify
				case model.SourceK3s:
					snap.Sources[i].Certs[j].Class = c.Profile.Classify(cf.Path, cf.Cert.IsCA)
				case model.SourceSecret:
					snap.Sources[i].Certs[j].Class = c.Profile.ClassifySecret(cf.Path)
				case model.SourceListener:
					snap.Sources[i].Certs[j].Class = rancher.Classification{Class: rancher.ClassListenerConfig, Rotation: rancher.RotationAlways}
				case model.SourceUI:
					snap.Sources[i].Certs[j].Class = rancher.Classification{Class: rancher.ClassUI}
				case model.SourceSetting:
					snap.Sources[i].Certs[j].Class = rancher.Classification{Class: rancher.ClassCACerts}
				case model.SourceDownstream:
					snap.Sources[i].Certs[j].Class = rancher.Classification{Class: rancher.ClassDownstream}
				}
			}
		}
	}
	return snap
}

// snapshot: a 2.3 server in the gap state (leaf in 4 days, UI renewed for a year, a CA and a
// 2.2 leftover that must not count), a 2.7 server with a leaf in 20 days, and an unreadable file.
func snapshot(now time.Time) model.Snapshot {
	v23 := rancher.Container{Name: "rancher23", State: container.StateRunning, RestartCount: 2, Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.3.1", K3s: "v0.8.0"})}
	v27 := rancher.Container{Name: "rancher27", State: container.StateRunning, Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.7.5", K3s: "v1.26.4+k3s1"})}
	tls := rancher.ServerTLSDir + "/"
	return classified(model.Snapshot{Taken: now, Containers: []rancher.Container{v23, v27}, Sources: []model.SourceResult{
		{Container: "rancher23", Source: "k3s", Up: true, Certs: []model.CertFile{
			cert("rancher23", "k3s", tls+"server-ca.crt", 3000*day, true, now),
			cert("rancher23", "k3s", tls+"client-admin.crt", 4*day+time.Hour, false, now),
			cert("rancher23", "k3s", rancher.ManagementTLSDir+"/localhost.crt", -10*day, false, now),
		}},
		{Container: "rancher23", Source: "ui", Up: true, Certs: []model.CertFile{cert("rancher23", "ui", "https://127.0.0.1:443", 365*day, false, now)}},
		{Container: "rancher27", Source: "k3s", Up: true, Certs: []model.CertFile{cert("rancher27", "k3s", tls+"client-admin.crt", 20*day+time.Hour, false, now)}},
		{Container: "rancher27", Source: "secret", Errors: []model.FileError{{Container: "rancher27", Source: "secret", Path: "172.17.0.3:6443",
			Err: readerr.New(readerr.APIUnreachable, errors.New("dial tcp 172.17.0.3:6443: connection refused"))}}},
		{Source: "file", Up: true, Errors: []model.FileError{{Source: "file", Path: "/etc/x/junk.crt", Err: readerr.New(readerr.NoCertificate, errors.New("/etc/x/junk.crt holds no PEM data"))}}},
	}})
}

func TestBuild(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	v := build(snapshot(now), now, PageOptions{Thresholds: thresholds.Default})
	if len(v.Servers) != 2 {
		t.Fatalf("%d servers", len(v.Servers))
	}
	s23, s27 := v.Servers[0], v.Servers[1]
	if !s23.Gap || s23.Leaf == nil || s23.Leaf.Path != rancher.ServerTLSDir+"/client-admin.crt" || s23.Leaf.DaysLeft != 4 ||
		!strings.Contains(s23.Advice, "rancher-cert-exporter rotate --rancher.container rancher23") {
		t.Errorf("2.3 server: %+v %+v", s23, s23.Leaf)
	}
	if s27.Gap || !strings.HasPrefix(s27.Advice, "Restart the container") || s27.WindowDays != 90 {
		t.Errorf("2.7 server: %+v", s27)
	}
	var order, classes, statuses []string
	for _, r := range v.Rows {
		order = append(order, r.Container+" "+r.Path)
		classes = append(classes, r.Class)
		statuses = append(statuses, r.Status)
	}
	// The leaf 4 days from expiry is critical as the alert has it, in words and colour.
	if want := "CRITICAL WARNING OK OK UNUSED UNREADABLE UNREADABLE"; strings.Join(statuses, " ") != want {
		t.Errorf("statuses %v, want %s", statuses, want)
	}
	// The 2.2 leftover expired ten days ago: unused, after the files in use.
	wantClasses := "critical warning ok ok unused unreadable unreadable"
	if strings.Join(classes, " ") != wantClasses || !strings.HasSuffix(order[5], "junk.crt") || !strings.HasSuffix(order[4], "localhost.crt") {
		t.Errorf("rows %v classes %v, want soonest first, unused then unreadable last, classes %s", order, classes, wantClasses)
	}
	if len(v.Down) != 1 || v.Down[0].Reason != readerr.APIUnreachable || v.Down[0].Container != "rancher27" {
		t.Errorf("down %+v", v.Down)
	}
}

func TestPage(t *testing.T) {
	now := time.Now()
	v := build(snapshot(now), now, PageOptions{Name: "rancher-cert-exporter", MetricsPath: "/metrics", RotationAPI: true, Thresholds: thresholds.Default})
	rec := httptest.NewRecorder()
	if err := page.Execute(rec, v); err != nil {
		t.Fatal(err)
	}
	html := rec.Body.String()
	for _, want := range []string{
		`<div class="banner" role="alert"><strong>The k3s certificates were not renewed.</strong>`,
		`href="/metrics"`, `href="/api/v1/rotations"`,
		// A short sentence and the reason's code; the raw error only as a tooltip.
		`UNREADABLE <span title="no_certificate: /etc/x/junk.crt holds no PEM data">(The file holds no certificate. no_certificate)</span>`,
		`<li title="dial tcp 172.17.0.3:6443: connection refused"><strong>rancher27</strong> secret: The container&#39;s API server does not answer (it is stopped, starting or crash-looping). <code>api_unreachable</code></li>`,
		`UNUSED — left by Rancher 2.0–2.2; this release neither writes nor renews it: safe to delete after a backup`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Count(html, "<tr class=") != 7 || strings.Count(html, `class="banner"`) != 1 || strings.Contains(html, "<script") {
		t.Errorf("page:\n%s", html)
	}
}

// TestNoContainerSaysWhereItLooked: an engine that answers with no Rancher container gives a
// page that says so, where the exporter looked and what to do — not "no certificate read yet".
func TestNoContainerSaysWhereItLooked(t *testing.T) {
	up := true
	snap := model.Snapshot{Taken: time.Now(), DockerUp: &up, Looked: "containers of rancher/rancher images on the Docker engine at unix:///var/run/docker.sock"}
	rec := httptest.NewRecorder()
	if err := page.Execute(rec, build(snap, time.Now(), PageOptions{Thresholds: thresholds.Default})); err != nil {
		t.Fatal(err)
	}
	html := rec.Body.String()
	for _, want := range []string{"No Rancher container found.", "rancher/rancher images on the Docker engine at unix:///var/run/docker.sock", "--rancher.container NAME", "make demo"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "No certificate read yet") {
		t.Error("the page says it read no certificate yet, as if it would")
	}
}

func TestPathsBreakAfterSlashes(t *testing.T) {
	if got := breakable("/var/lib/<x>"); got != `<span class="seg">/</span><wbr><span class="seg">var/</span><wbr><span class="seg">lib/</span><wbr><span class="seg">&lt;x&gt;</span>` {
		t.Errorf("breakable: %s", got)
	}
}

// TestDownstreamSection: a 2.11 server's clusters — an RKE1 one 20 days from a certificate's
// expiry, one disconnected since the cacerts checksum changed an hour ago — are listed with
// their agents and soonest certificates, under a banner that they were lost after the change,
// and with a line that 2.12 will not start while the RKE1 cluster is there.
func TestDownstreamSection(t *testing.T) {
	now := time.Now()
	v211 := rancher.Container{Name: "r211", State: container.StateRunning, Profile: rancher.ProfileOf(rancher.Versions{Rancher: "v2.11.3"})}
	lost := now.Add(-30 * time.Minute)
	snap := model.Snapshot{Taken: now, Containers: []rancher.Container{v211}, CACertsChanged: map[string]time.Time{"r211": now.Add(-time.Hour)},
		Sources: []model.SourceResult{{Container: "r211", Source: model.SourceDownstream, Up: true,
			Clusters: []model.DownstreamCluster{
				{ID: "c-rke", DisplayName: "prod", Driver: "rancherKubernetesEngine", RKE1: true, Connected: true},
				{ID: "c-imp", DisplayName: "edge", Driver: "imported", Since: lost},
			},
			Certs: []model.CertFile{
				cert("r211", model.SourceDownstream, "c-rke/kube-apiserver", 20*day+time.Hour, false, now),
				cert("r211", model.SourceDownstream, "c-rke/kube-ca", 3000*day, true, now),
			}}}}
	v := build(snap, now, PageOptions{Name: "x", Thresholds: thresholds.Default})
	d := v.Servers[0].Downstream
	if d == nil || len(d.Clusters) != 2 || !d.Lost || !strings.Contains(d.Why, "cacerts checksum") || d.RKE1 != 1 || !d.Blocks {
		t.Fatalf("downstream view %+v", d)
	}
	if s := d.Clusters[0].Soonest; s == nil || s.Path != "c-rke/kube-apiserver" || s.DaysLeft != 20 {
		t.Errorf("soonest certificate of c-rke: %+v", s)
	}
	rec := httptest.NewRecorder()
	if err := page.Execute(rec, v); err != nil {
		t.Fatal(err)
	}
	html := rec.Body.String()
	for _, want := range []string{"<h4>Downstream clusters</h4>", "Downstream clusters were lost after a certificate change.",
		"1 RKE1 cluster(s): Rancher 2.12 and later will not start", `<span class="warning">not connected</span>`, "since " + lost.UTC().Format("2006-01-02 15:04")} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	snap.CACertsChanged = nil // a cluster disconnected for another reason: no banner
	if d := build(snap, now, PageOptions{Name: "x", Thresholds: thresholds.Default}).Servers[0].Downstream; d.Lost {
		t.Errorf("lost after a change without a change: %+v", d)
	}
}
