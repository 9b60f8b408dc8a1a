package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

func snapshot(notAfter ...time.Time) model.Snapshot {
	var res model.SourceResult
	for i, na := range notAfter {
		res.Certs = append(res.Certs, model.CertFile{Path: string(rune('a' + i)), Cert: &certs.Info{
			NotBefore: na.Add(-365 * 24 * time.Hour), NotAfter: na}})
	}
	return model.Snapshot{Sources: []model.SourceResult{res}}
}

// concluded is a snapshot taken now with its verdicts, as the collector hands it over.
func concluded(s model.Snapshot, now time.Time) model.Snapshot {
	s.Taken = now
	s.Conclude(nil)
	return s
}

func TestStatusesAndExitCodes(t *testing.T) {
	now := time.Date(2021, 10, 14, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	unreadable := model.SourceResult{Errors: []model.FileError{{Path: "x", Err: readerr.New(readerr.ParseError, errors.New("bad"))}}}
	withError := func(s model.Snapshot) model.Snapshot {
		s.Sources = append(s.Sources, unreadable)
		return s
	}
	tests := []struct {
		name     string
		snap     model.Snapshot
		statuses []string
		code     int
	}{
		{"all valid", snapshot(now.Add(31 * day)), []string{OK}, ExitOK},
		{"inside the warning window", snapshot(now.Add(31*day), now.Add(29*day)), []string{OK, Warning}, ExitWarning},
		{"at the warning threshold, as the alert has it", snapshot(now.Add(30*day), now.Add(30*day+time.Second)), []string{Warning, OK}, ExitWarning},
		{"at the critical threshold", snapshot(now.Add(7*day), now.Add(7*day+time.Second)), []string{Critical, Warning}, ExitCritical},
		{"three days left", snapshot(now.Add(3 * day)), []string{Critical}, ExitCritical},
		{"expires this very second", snapshot(now), []string{Expired}, ExitCritical},
		{"not yet valid", snapshot(now.Add(366 * day)), []string{NotYetValid}, ExitCritical},
		{"unreadable beats a warning", withError(snapshot(now.Add(20 * day))), []string{Warning, Unreadable}, ExitUnknown},
		{"critical beats unreadable", withError(snapshot(now.Add(day))), []string{Critical, Unreadable}, ExitCritical},
		{"expired beats unreadable", withError(snapshot(now.Add(-day))), []string{Expired, Unreadable}, ExitCritical},
		{"nothing found", model.Snapshot{}, nil, ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := Rows(tt.snap, now, Limits{Warn: 30 * day, Crit: 7 * day})
			var got []string
			for _, r := range rows {
				got = append(got, r.Status)
			}
			if len(got) != len(tt.statuses) {
				t.Fatalf("statuses %v, want %v", got, tt.statuses)
			}
			for i := range got {
				if got[i] != tt.statuses[i] {
					t.Fatalf("statuses %v, want %v", got, tt.statuses)
				}
			}
			if code := ExitCode(rows); code != tt.code {
				t.Fatalf("exit %d, want %d", code, tt.code)
			}
		})
	}
}

func TestResidual(t *testing.T) {
	for d, want := range map[time.Duration]string{
		3*24*time.Hour + 5*time.Hour + 59*time.Minute: "3d5h",
		-(2*24*time.Hour + time.Hour):                 "-2d1h",
		0:                                             "0d0h",
	} {
		if got := residual(d); got != want {
			t.Errorf("residual(%s) = %s, want %s", d, got, want)
		}
	}
}

// TestUnreadableRowNamesItsReasonOnce: the reason, then the message, once each.
func TestUnreadableRowNamesItsReasonOnce(t *testing.T) {
	snap := model.Snapshot{Sources: []model.SourceResult{{Source: "file", Errors: []model.FileError{{Source: "file", Path: "/x/junk.crt",
		Err: readerr.Newf(readerr.NoCertificate, "/x/junk.crt holds no PEM data")}}}}}
	var out strings.Builder
	if err := WriteTable(&out, Rows(snap, time.Now(), Limits{Warn: 30 * 24 * time.Hour, Crit: 7 * 24 * time.Hour})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "UNREADABLE (no_certificate: /x/junk.crt holds no PEM data)") || strings.Count(out.String(), "no_certificate") != 1 {
		t.Fatalf("table:\n%s", out.String())
	}
}

func TestLimitsAreChecked(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		l    Limits
		says string
	}{
		{Limits{Warn: 7 * day, Crit: 30 * day}, "the critical threshold (30 days) is above the warning one (7 days)"},
		{Limits{Warn: 30 * day, Crit: -day}, "must not be negative"},
	} {
		if err := tt.l.Check(); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%+v: %v, want %q", tt.l, err, tt.says)
		}
	}
	if err := (Limits{Warn: 7 * day, Crit: 7 * day}).Check(); err != nil {
		t.Errorf("equal thresholds: %v", err)
	}
}

// selfSigned makes a CA for the trust tests.
func selfSigned(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestUntrustedChainIsCritical: a UI chain the agents' cacerts does not sign is a CRITICAL row
// that says so, and exit 2; one it signs is OK.
func TestUntrustedChainIsCritical(t *testing.T) {
	served, other := selfSigned(t, "served-ca"), selfSigned(t, "cattle-ca")
	snap := func(cacerts *x509.Certificate) model.Snapshot {
		return model.Snapshot{Containers: []rancher.Container{{Name: "rancher"}}, Sources: []model.SourceResult{
			{Container: "rancher", Source: model.SourceUI, Up: true, Chain: []*x509.Certificate{served}},
			{Container: "rancher", Source: model.SourceSetting, Up: true, Settings: &model.Settings{
				CACerts: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cacerts.Raw})), AgentTLSMode: "strict"}},
		}}
	}
	limits := Limits{Warn: 30 * 24 * time.Hour, Crit: 7 * 24 * time.Hour}
	rows := Rows(concluded(snap(other), time.Now()), time.Now(), limits)
	if len(rows) != 1 || rows[0].Status != Critical || rows[0].Path != TrustPath || !strings.Contains(rows[0].Note, "downstream agents will refuse the server") || ExitCode(rows) != ExitCritical {
		t.Fatalf("untrusted: %+v", rows)
	}
	if rows := Rows(concluded(snap(served), time.Now()), time.Now(), limits); len(rows) != 1 || rows[0].Status != OK || ExitCode(rows) != ExitOK {
		t.Fatalf("trusted: %+v", rows)
	}
}

// ca makes a CA expiring at notAfter, and a leaf for rancher.example.test it signs.
func caAndLeaf(t *testing.T, cn string, notAfter time.Time) (ca, leaf *x509.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: notAfter.Add(-3650 * 24 * time.Hour),
		NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(der)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ltmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "cattle"}, DNSNames: []string{"rancher.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(300 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err = x509.CreateCertificate(rand.Reader, ltmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return ca, leaf
}

// TestEveryCACertsCertificateAndTheAnchorJudged: each certificate of the cacerts bundle is a row
// (cacerts#1, #2), and only the one the served UI chain ends in is judged: an expired old root
// before a valid anchor changes nothing, an unrelated ten-year CA before an anchor 20 days from
// expiry does not hide it. While the UI chain is not read, every one is judged.
func TestEveryCACertsCertificateAndTheAnchorJudged(t *testing.T) {
	now := time.Now()
	limits := Limits{Warn: 30 * 24 * time.Hour, Crit: 7 * 24 * time.Hour}
	rows := func(chain []*x509.Certificate, bundle ...*x509.Certificate) []Row {
		var cacerts string
		setting := model.SourceResult{Container: "rancher", Source: model.SourceSetting, Up: true}
		for i, c := range bundle {
			cacerts += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
			setting.Certs = append(setting.Certs, model.CertFile{Container: "rancher", Source: model.SourceSetting, Path: model.CACertPath(i), Cert: certs.InfoOf(c),
				Class: rancher.Classification{Class: rancher.ClassCACerts}})
		}
		setting.Settings = &model.Settings{CACerts: cacerts, AgentTLSMode: "strict"}
		ui := model.SourceResult{Container: "rancher", Source: model.SourceUI, Up: chain != nil, Chain: chain}
		return Rows(concluded(model.Snapshot{Containers: []rancher.Container{{Name: "rancher"}}, Sources: []model.SourceResult{ui, setting}}, now), now, limits)
	}
	status := func(rows []Row, path string) Row {
		for _, r := range rows {
			if r.Path == path {
				return r
			}
		}
		t.Fatalf("no row %s in %+v", path, rows)
		return Row{}
	}

	anchor, leaf := caAndLeaf(t, "cattle-ca", now.Add(3000*24*time.Hour))
	old, _ := caAndLeaf(t, "old-ca", now.Add(-24*time.Hour))
	got := rows([]*x509.Certificate{leaf}, old, anchor)
	if r := status(got, "cacerts#1"); r.Status != Unused || !strings.Contains(r.Note, "cacerts#2") {
		t.Errorf("the expired old root: %+v", r)
	}
	if r := status(got, "cacerts#2"); r.Status != OK || ExitCode(got) != ExitOK {
		t.Errorf("the anchor: %+v, exit %d", r, ExitCode(got))
	}

	soon, leaf := caAndLeaf(t, "cattle-ca", now.Add(20*24*time.Hour))
	unrelated, _ := caAndLeaf(t, "unrelated-ca", now.Add(3650*24*time.Hour))
	got = rows([]*x509.Certificate{leaf, soon}, unrelated, soon)
	if r := status(got, "cacerts#2"); r.Status != Warning || ExitCode(got) != ExitWarning {
		t.Errorf("the anchor 20 days from expiry behind an unrelated CA: %+v, exit %d", r, ExitCode(got))
	}
	if r := status(got, "cacerts#1"); r.Status != Unused {
		t.Errorf("the unrelated CA: %+v", r)
	}

	got = rows(nil, old, anchor) // the UI not read: no anchor known, all judged
	if r := status(got, "cacerts#1"); r.Status != Expired || ExitCode(got) != ExitCritical {
		t.Errorf("without the UI chain the expired root counts: %+v", r)
	}
}

// TestTableEscapesWhatATerminalWouldObey: a subject that clears the screen and paints ALL OK, one
// that sets the terminal's title, a file name with a newline and one with a right-to-left
// override print escaped, one row each.
func TestTableEscapesWhatATerminalWouldObey(t *testing.T) {
	rows := []Row{
		{Container: "rancher", Source: "secret", Path: "cattle-system/evil/tls.crt", Subject: "\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m", Status: Critical},
		{Container: "rancher", Source: "secret", Path: "cattle-system/title/tls.crt", Subject: "\x1b]0;all good\a", Status: Critical},
		{Container: "rancher", Source: "k3s", Path: "/var/lib/rancher/k3s/server/tls/new\nline.crt", Status: Expired},
		{Container: "rancher", Source: "file", Path: "/etc/ssl/evil\u202egpj.crt", Status: Warning, Error: "tab\there"},
	}
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\a", "\u202e", "new\nline", "\t"} {
		if strings.Contains(out, bad) {
			t.Errorf("the table holds %q raw:\n%s", bad, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != len(rows)+1 {
		t.Errorf("%d lines for %d rows and the header:\n%s", lines, len(rows), out)
	}
	for _, want := range []string{`\x1b[2J\x1b[H\x1b[32mALL OK\x1b[0m`, `\x1b]0;all good\x07`, `new\nline.crt`, `evil\u202egpj.crt`, `tab\there`} {
		if !strings.Contains(out, want) {
			t.Errorf("the table does not show %s:\n%s", want, out)
		}
	}
}

// TestOwnerOnTimeIsOK: a certificate whose owner renews it ahead is OK, saying so, while the
// owner is on time (its window less 6 hours), and judged by the thresholds once it is late; a
// certificate without an owner's window is judged as always.
func TestOwnerOnTimeIsOK(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := rancher.ProfileOf(rancher.Versions{Rancher: "v2.7.5", K3s: "v1.26.4+k3s1"})
	old := rancher.ProfileOf(rancher.Versions{Rancher: "v2.6.0", K3s: "v1.21.3+k3s1"})
	for _, tc := range []struct {
		name    string
		profile rancher.Profile
		path    string
		left    time.Duration
		status  string
		note    string
	}{
		{"renewing webhook inside its 30 days, on time", p, "cattle-system/cattle-webhook-tls/tls.crt", 30*day - time.Hour, OK, "rancher-webhook renews it 30 days before expiry: not late yet"},
		{"renewing webhook, owner late", p, "cattle-system/cattle-webhook-tls/tls.crt", 30*day - 7*time.Hour, Warning, RotateNote("r", "cattle-system/cattle-webhook-tls")},
		{"2.6.0's webhook renews nothing", old, "cattle-system/cattle-webhook-tls/tls.crt", 20 * day, Warning, "renew it: rancher-cert-exporter rotate --rancher.container r --secret cattle-system/cattle-webhook-tls"},
		{"UI certificate at 7 days, Rancher on time", p, "cattle-system/serving-cert/tls.crt", 7*day - time.Hour, OK, "Rancher renews it 7 days before expiry: not late yet"},
		{"UI certificate at 6 days: Rancher is late", p, "cattle-system/serving-cert/tls.crt", 6 * day, Critical, RotateNote("r", "cattle-system/serving-cert")},
		{"its CA is not what Rancher renews", p, "cattle-system/tls-rancher/tls.crt", 20 * day, Warning, ""},
	} {
		f := model.CertFile{Container: "r", Source: model.SourceSecret, Path: tc.path, Class: tc.profile.ClassifySecret(tc.path),
			Cert: &certs.Info{NotBefore: now.Add(-day), NotAfter: now.Add(tc.left)}}
		rows := Rows(model.Snapshot{Sources: []model.SourceResult{{Container: "r", Source: model.SourceSecret, Certs: []model.CertFile{f}}}}, now, LimitsOf(thresholds.Default))
		if len(rows) != 1 || rows[0].Status != tc.status || rows[0].Note != tc.note {
			t.Errorf("%s: %+v, want %s %q", tc.name, rows, tc.status, tc.note)
		}
	}
}
