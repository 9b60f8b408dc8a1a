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
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

func snapshot(notAfter ...time.Time) collector.Snapshot {
	var res collector.SourceResult
	for i, na := range notAfter {
		res.Certs = append(res.Certs, collector.CertFile{Path: string(rune('a' + i)), Cert: &certs.Info{
			NotBefore: na.Add(-365 * 24 * time.Hour), NotAfter: na}})
	}
	return collector.Snapshot{Sources: []collector.SourceResult{res}}
}

func TestStatusesAndExitCodes(t *testing.T) {
	now := time.Date(2021, 10, 14, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	unreadable := collector.SourceResult{Errors: []collector.FileError{{Path: "x", Err: readerr.New(readerr.ParseError, errors.New("bad"))}}}
	withError := func(s collector.Snapshot) collector.Snapshot {
		s.Sources = append(s.Sources, unreadable)
		return s
	}
	tests := []struct {
		name     string
		snap     collector.Snapshot
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
		{"nothing found", collector.Snapshot{}, nil, ExitOK},
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
	snap := collector.Snapshot{Sources: []collector.SourceResult{{Source: "file", Errors: []collector.FileError{{Source: "file", Path: "/x/junk.crt",
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
	snap := func(cacerts *x509.Certificate) collector.Snapshot {
		return collector.Snapshot{Containers: []rancher.Container{{Name: "rancher"}}, Sources: []collector.SourceResult{
			{Container: "rancher", Source: collector.SourceUI, Up: true, Chain: []*x509.Certificate{served}},
			{Container: "rancher", Source: collector.SourceSetting, Up: true, Settings: &collector.Settings{
				CACerts: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cacerts.Raw})), AgentTLSMode: "strict"}},
		}}
	}
	limits := Limits{Warn: 30 * 24 * time.Hour, Crit: 7 * 24 * time.Hour}
	rows := Rows(snap(other), time.Now(), limits)
	if len(rows) != 1 || rows[0].Status != Critical || rows[0].Path != TrustPath || !strings.Contains(rows[0].Note, "downstream agents will refuse the server") || ExitCode(rows) != ExitCritical {
		t.Fatalf("untrusted: %+v", rows)
	}
	if rows := Rows(snap(served), time.Now(), limits); len(rows) != 1 || rows[0].Status != OK || ExitCode(rows) != ExitOK {
		t.Fatalf("trusted: %+v", rows)
	}
}
