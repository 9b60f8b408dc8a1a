// Package check prints every certificate with its status, like `k3s certificate check`, and
// maps the worst status to a Nagios exit code.
package check

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/printable"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

// Statuses of a certificate.
const (
	OK          = "OK"
	Warning     = "WARNING"  // expires within the warning threshold
	Critical    = "CRITICAL" // expires within the critical threshold
	Expired     = "EXPIRED"
	NotYetValid = "NOT YET VALID"
	Unreadable  = "UNREADABLE"
	// Unused: a file the container's release neither writes nor renews, left by an earlier
	// release; it never changes the exit code.
	Unused = "UNUSED"
)

// Nagios exit codes.
const (
	ExitOK       = 0
	ExitWarning  = 1
	ExitCritical = 2
	ExitUnknown  = 3
)

// Row is one certificate file, or one that could not be read.
type Row struct {
	Container string    `json:"container"`
	Source    string    `json:"source"`
	Path      string    `json:"path"`
	Subject   string    `json:"subject,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Residual  string    `json:"residual,omitempty"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"` // an unreadable one's (readerr)
	Error     string    `json:"error,omitempty"`
	// Note says why a file is unused.
	Note string `json:"note,omitempty"`
}

// Limits are how soon an expiry is a warning, and critical: as the alerts have them, a
// certificate is at a threshold when the time it has left is at or below it.
type Limits struct{ Warn, Crit time.Duration }

// LimitsOf are the limits of the alert thresholds.
func LimitsOf(t thresholds.Days) Limits { return Limits{Warn: t.WarningIn(), Crit: t.CriticalIn()} }

// Check refuses limits a Nagios plugin would take for a mistake.
func (l Limits) Check() error {
	if l.Warn < 0 || l.Crit < 0 {
		return fmt.Errorf("thresholds must not be negative (warning %s, critical %s)", days(l.Warn), days(l.Crit))
	}
	if l.Crit > l.Warn {
		return fmt.Errorf("the critical threshold (%s) is above the warning one (%s)", days(l.Crit), days(l.Warn))
	}
	return nil
}

func days(d time.Duration) string { return fmt.Sprintf("%g days", d.Hours()/24) }

// Status is the status of a certificate in use at now.
func (l Limits) Status(notBefore, notAfter, now time.Time) string {
	left := notAfter.Sub(now)
	switch {
	case now.Before(notBefore):
		return NotYetValid
	case left <= 0:
		return Expired
	case left <= l.Crit:
		return Critical
	case left <= l.Warn:
		return Warning
	}
	return OK
}

// Rows turns a snapshot into rows sorted by container, source and path.
func Rows(snap model.Snapshot, now time.Time, limits Limits) []Row {
	var rows []Row
	trusts := map[string]model.Trust{}
	for _, c := range snap.Containers {
		if t, ok := snap.Trust(c.Name); ok {
			trusts[c.Name] = t
			if r, ok := trustRow(c.Name, t); ok {
				rows = append(rows, r)
			}
		}
	}
	for _, c := range snap.Containers {
		for _, n := range snap.Names(c.Name) {
			rows = append(rows, namesRow(n))
		}
		for _, d := range snap.Clusters(c.Name) {
			if !d.Connected {
				rows = append(rows, disconnectedRow(c.Name, d))
			}
		}
	}
	for _, f := range snap.Certs() {
		r := Row{Container: f.Container, Source: f.Source, Path: f.Path, Subject: f.Cert.SubjectCN,
			NotAfter: f.Cert.NotAfter.UTC(), Residual: residual(f.Cert.NotAfter.Sub(now))}
		switch {
		case f.Class.Class.Unused():
			r.Status, r.Note = Unused, UnusedNote(f.Class)
		case f.Class.Class == rancher.ClassCACerts && !trusts[f.Container].Judged(f.Path):
			r.Status, r.Note = Unused, NotAnchorNote(trusts[f.Container].Anchor)
		default:
			r.Status = limits.Status(f.Cert.NotBefore, f.Cert.NotAfter, now)
			switch {
			case (r.Status == Warning || r.Status == Critical) && f.Class.OwnerOnTime(f.Cert.NotAfter.Sub(now)):
				r.Status, r.Note = OK, OwnerNote(f.Class)
			case r.Status != OK && f.Class.Class == rancher.ClassInCluster && rancher.CheckRotatable(path.Dir(f.Path)) == nil && path.Base(f.Path) == "tls.crt":
				r.Note = RotateNote(f.Container, path.Dir(f.Path))
			}
		}
		rows = append(rows, r)
	}
	for _, e := range snap.Errors() {
		rows = append(rows, Row{Container: e.Container, Source: e.Source, Path: e.Path, Status: Unreadable, Reason: readerr.ReasonOf(e.Err),
			Error: readerr.ReasonOf(e.Err) + ": " + e.Err.Error()})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Container != b.Container {
			return a.Container < b.Container
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Path < b.Path
	})
	return rows
}

// TrustPath names the row that says whether downstream agents trust the UI chain.
const TrustPath = "UI chain, as agents verify it"

// trustRow says whether the UI chain verifies as the container's downstream agents will verify
// it: OK, or CRITICAL — the agents fail at their next connection.
func trustRow(container string, t model.Trust) (Row, bool) {
	if !t.Checked {
		return Row{}, false
	}
	r := Row{Container: container, Source: model.SourceUI, Path: TrustPath, Status: OK, Note: t.Why}
	if !t.Trusted {
		r.Status, r.Note = Critical, t.Why+"; downstream agents will refuse the server"
	}
	return r, true
}

// ExitCode is the Nagios code of the worst row: expired, not yet valid or within the critical
// threshold is critical, an unreadable file unknown, within the warning threshold a warning.
func ExitCode(rows []Row) int {
	code := ExitOK
	for _, r := range rows {
		switch r.Status {
		case Expired, NotYetValid, Critical:
			return ExitCritical
		case Unreadable:
			code = ExitUnknown
		case Warning:
			if code == ExitOK {
				code = ExitWarning
			}
		}
	}
	return code
}

// UnusedNote says why a file is unused and what to do with it.
func UnusedNote(c rancher.Classification) string {
	return "left by " + c.LeftBy + "; this release neither writes nor renews it: safe to delete after a backup"
}

// NamesPath names the row that says whether a certificate covers the names its clients use.
func NamesPath(path string) string { return "names of " + path }

// namesRow says whether a certificate covers the names its clients reach it by: OK, or WARNING
// naming what is missing and who uses it.
func namesRow(n model.NameCheck) Row {
	r := Row{Container: n.Container, Source: n.Source, Path: NamesPath(n.Path), Status: OK}
	var names []string
	for _, m := range n.Names {
		names = append(names, m.Name)
	}
	r.Note = "covers " + strings.Join(names, ", ")
	if !n.Covered() {
		var missing []string
		for _, m := range n.Missing {
			missing = append(missing, m.Name+" ("+m.By+")")
		}
		r.Status, r.Note = Warning, "does not cover "+strings.Join(missing, ", ")+": those clients fail the handshake"
	}
	return r
}

// disconnectedRow says that the agent of a cluster the server manages is not connected.
func disconnectedRow(container string, d model.DownstreamCluster) Row {
	note := "the cluster agent of " + d.DisplayName + " is not connected"
	if !d.Since.IsZero() {
		note += " since " + d.Since.UTC().Format(time.RFC3339)
	}
	return Row{Container: container, Source: model.SourceDownstream, Path: d.ID, Status: Warning, Note: note}
}

// OwnerNote says that the owner of a certificate renews it and is not late yet.
func OwnerNote(c rancher.Classification) string {
	return fmt.Sprintf("%s renews it %d days before expiry: not late yet", c.Owner, int(c.RenewWithin.Hours()/24))
}

// RotateNote names the rotation that renews an in-cluster certificate.
func RotateNote(container, key string) string {
	return "renew it: rancher-cert-exporter rotate --rancher.container " + container + " --secret " + key
}

// NotAnchorNote says why a certificate of cacerts does not count: the UI chain ends in another
// one, or in none.
func NotAnchorNote(anchor string) string {
	if anchor == "" {
		return "in cacerts, but the UI chain ends in none of its certificates"
	}
	return "in cacerts, but the UI chain ends in " + anchor + ": agents do not rely on this one now"
}

// residual formats time left like `k3s certificate check`: days and hours, negative when past.
func residual(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	days := int(d / (24 * time.Hour))
	hours := int(d % (24 * time.Hour) / time.Hour)
	return fmt.Sprintf("%s%dd%dh", sign, days, hours)
}

// WriteTable prints the rows as an aligned table, one line per row whatever the names hold.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tSOURCE\tFILE\tSUBJECT\tEXPIRES\tRESIDUAL\tSTATUS")
	for _, r := range rows {
		expires := ""
		if !r.NotAfter.IsZero() {
			expires = r.NotAfter.Format(time.RFC3339)
		}
		status := r.Status
		if r.Error != "" {
			status += " (" + r.Error + ")"
		}
		if r.Note != "" {
			status += " (" + r.Note + ")"
		}
		fields := []string{r.Container, r.Source, r.Path, r.Subject, expires, r.Residual, status}
		for i, f := range fields { // names and subjects come from outside: never escape sequences
			fields[i] = printable.Escape(f)
		}
		fmt.Fprintln(tw, strings.Join(fields, "\t"))
	}
	return tw.Flush()
}

// WriteJSON prints the rows as a JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if rows == nil {
		rows = []Row{}
	}
	return enc.Encode(rows)
}
