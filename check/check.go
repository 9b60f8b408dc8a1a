// Package check prints every certificate with its status, like `k3s certificate check`, and
// maps the worst status to a Nagios exit code.
package check

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Statuses of a certificate.
const (
	OK          = "OK"
	Warning     = "WARNING"
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
	Error     string    `json:"error,omitempty"`
	// Note says why a file is unused.
	Note string `json:"note,omitempty"`
}

// Rows turns a snapshot into rows sorted by container, source and path.
func Rows(snap collector.Snapshot, now time.Time, warn time.Duration) []Row {
	var rows []Row
	for _, f := range snap.Certs() {
		r := Row{Container: f.Container, Source: f.Source, Path: f.Path, Subject: f.Cert.SubjectCN,
			NotAfter: f.Cert.NotAfter.UTC(), Residual: residual(f.Cert.NotAfter.Sub(now))}
		switch {
		case f.Class.Class.Unused():
			r.Status, r.Note = Unused, UnusedNote(f.Class)
		case now.Before(f.Cert.NotBefore):
			r.Status = NotYetValid
		case !now.Before(f.Cert.NotAfter):
			r.Status = Expired
		case f.Cert.NotAfter.Sub(now) < warn:
			r.Status = Warning
		default:
			r.Status = OK
		}
		rows = append(rows, r)
	}
	for _, e := range snap.Errors() {
		rows = append(rows, Row{Container: e.Container, Source: e.Source, Path: e.Path, Status: Unreadable,
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

// ExitCode is the Nagios code of the worst row: expired or not yet valid is critical, an
// unreadable file unknown, an expiry within the warning window a warning.
func ExitCode(rows []Row) int {
	code := ExitOK
	for _, r := range rows {
		switch r.Status {
		case Expired, NotYetValid:
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

// WriteTable prints the rows as an aligned table.
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Container, r.Source, r.Path, r.Subject, expires, r.Residual, status)
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
