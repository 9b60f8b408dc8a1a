package check

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
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
		{"expires this very second", snapshot(now), []string{Expired}, ExitCritical},
		{"not yet valid", snapshot(now.Add(366 * day)), []string{NotYetValid}, ExitCritical},
		{"unreadable beats a warning", withError(snapshot(now.Add(day))), []string{Warning, Unreadable}, ExitUnknown},
		{"expired beats unreadable", withError(snapshot(now.Add(-day))), []string{Expired, Unreadable}, ExitCritical},
		{"nothing found", collector.Snapshot{}, nil, ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := Rows(tt.snap, now, 30*day)
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
	if err := WriteTable(&out, Rows(snap, time.Now(), 30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "UNREADABLE (no_certificate: /x/junk.crt holds no PEM data)") || strings.Count(out.String(), "no_certificate") != 1 {
		t.Fatalf("table:\n%s", out.String())
	}
}
