package web

// The status page at /: every Rancher server and every certificate at a glance, from the
// collector's last snapshot (the one /metrics served), rendered on the server with no script
// and no outside asset — Rancher hosts are often air-gapped.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/autorotate"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/check"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("page").Funcs(template.FuncMap{"breakable": breakable}).Parse(pageHTML))

// breakable lets a path wrap before each slash, and nowhere else while a segment fits: each
// segment is an inline block, which breaks inside only when it is wider than the column.
func breakable(path string) template.HTML {
	var b strings.Builder
	for i, seg := range strings.SplitAfter(path, "/") {
		if seg == "" {
			continue
		}
		if i > 0 {
			b.WriteString("<wbr>")
		}
		b.WriteString(`<span class="seg">` + template.HTMLEscapeString(seg) + "</span>")
	}
	return template.HTML(b.String())
}

// PageOptions say what the page links to and how it colours.
type PageOptions struct {
	Name, Version string
	MetricsPath   string
	RotationAPI   bool // link the rotation jobs
	Thresholds    thresholds.Days
	Auto          Planner // nil when automatic rotation is off
}

// Snapshots gives the snapshot as it stands (*collector.Collector).
type Snapshots interface {
	Current(ctx context.Context) model.Snapshot
}

// pageHandler serves the page.
func pageHandler(snaps Snapshots, opts PageOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), exposition.Budget(r))
		defer cancel()
		var buf bytes.Buffer // rendered whole first: an error is a clean 500, not half a page
		if err := page.Execute(&buf, build(snaps.Current(ctx), time.Now(), opts)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_, _ = w.Write(buf.Bytes()) // an error is the client going away
	})
}

// view is what the page shows.
type view struct {
	PageOptions
	Taken   time.Time
	Now     int64 // the time the days left are counted from, as Unix seconds
	Servers []server
	Rows    []row
	Down    []down
	// NoContainer: the engine answers, but no Rancher container is watched; Looked says
	// where the exporter looked.
	NoContainer bool
	Looked      string
}

// server is one Rancher container at a glance.
type server struct {
	Name, Rancher, K3s, Renewal string
	WindowDays                  int
	State                       string
	Restarts                    int
	Leaf, UI                    *row // the soonest k3s leaf, the UI certificate
	// Gap: the UI certificate was renewed, the k3s certificates were not (the condition of
	// RancherK3sCertificatesNotRenewed, without its for:).
	Gap    bool
	Advice string
	// Auto is the next automatic rotation, or why there is none.
	Auto string
	// Listener says, on 2.3, that the 6443 certificate (kept in the cluster, not a file) could
	// not be checked yet, and why.
	Listener string
	// Trust is what downstream agents trust, when Rancher's settings were read.
	Trust *trustLine
	// Names says which certificates cover the names their clients use: Checked of them, and
	// each name one does not cover.
	Names []nameLine
	// Downstream is the clusters the server manages, when they were read.
	Downstream *downstreamView
}

// downstreamView is the clusters a server manages, what was lost, and what an upgrade needs.
type downstreamView struct {
	Clusters []clusterRow
	// Lost: clusters are disconnected while what agents trust changed (the checksum within a
	// day) or no longer verifies; Why says which.
	Lost bool
	Why  string
	// RKE1 counts the RKE1 clusters; Blocks: the release is before 2.12, which will not start
	// while there is one.
	RKE1   int
	Blocks bool
}

// clusterRow is one cluster: whether its agent is connected and since when, its soonest
// certificate.
type clusterRow struct {
	ID, DisplayName, Driver string
	Connected               bool
	Since                   time.Time
	Soonest                 *row
}

// nameLine is a name a certificate of the server does not cover, or (Missing empty) the
// certificates checked, all covering theirs.
type nameLine struct {
	Path, Name, By string
	Checked        int
}

// trustLine is what the agents of the server's downstream clusters trust, and whether the UI
// chain verifies as they will verify it.
type trustLine struct {
	model.Trust
	Short string // the checksum's first 12 digits
	CA    *row   // the cacerts CA
}

// row is one certificate, or one that could not be read.
type row struct {
	Container, Source, Path, Subject string
	NotAfter                         time.Time
	DaysLeft                         int
	Status                           string
	Class                            string // expired, critical, warning, ok, unused or unreadable
	Error                            string // the reason and the raw error, for a tooltip
	Reason                           string // an unreadable one's, in words and code
	Note                             string // why a file is unused
}

// down is a source that could not be read: a sentence and the reason's code, the engine's or
// the API server's own words only on demand (a tooltip).
type down struct{ Container, Source, Reason, Sentence, Message string }

func build(snap model.Snapshot, now time.Time, opts PageOptions) view {
	v := view{PageOptions: opts, Taken: snap.Taken.UTC(), Now: now.Unix(), Looked: snap.Looked,
		NoContainer: snap.DockerUp != nil && *snap.DockerUp && snap.Watching == 0}
	t := opts.Thresholds
	files := map[string]model.CertFile{} // by container, source and path, for the class
	for _, f := range snap.Certs() {
		files[f.Container+"\x00"+f.Source+"\x00"+f.Path] = f
	}
	for _, r := range check.Rows(snap, now, check.LimitsOf(t)) {
		out := row{Container: r.Container, Source: r.Source, Path: r.Path, Subject: r.Subject, NotAfter: r.NotAfter, Status: r.Status, Error: r.Error, Note: r.Note}
		if r.Reason != "" {
			out.Reason = readerr.Sentence(r.Reason) + " " + r.Reason
		}
		if !r.NotAfter.IsZero() {
			// Whole days, as the metric gives them: floor((cert_not_after_seconds - time()) / 86400).
			out.DaysLeft = int(math.Floor(r.NotAfter.Sub(now).Hours() / 24))
		}
		out.Class = class(out)
		v.Rows = append(v.Rows, out)
	}
	// In use soonest first, then the unused, then the unreadable.
	group := func(r row) int {
		switch r.Status {
		case check.Unused:
			return 1
		case check.Unreadable:
			return 2
		}
		return 0
	}
	slices.SortStableFunc(v.Rows, func(a, b row) int {
		if ga, gb := group(a), group(b); ga != gb {
			return ga - gb
		}
		return a.NotAfter.Compare(b.NotAfter)
	})
	for _, c := range snap.Containers {
		s := summarize(c, v.Rows, files, now, t)
		if c.Profile.ListenerConfig {
			s.Listener = listenerLine(snap, c)
		}
		if t, ok := snap.Trust(c.Name); ok {
			s.Trust = &trustLine{Trust: t, Short: t.Checksum[:min(12, len(t.Checksum))]}
			for i := range v.Rows { // soonest first: the anchor, else (not known yet) the soonest
				if r := &v.Rows[i]; r.Container == c.Name && r.Source == model.SourceSetting && !r.NotAfter.IsZero() && t.Judged(r.Path) && s.Trust.CA == nil {
					s.Trust.CA = r
				}
			}
		}
		s.Names = nameLines(snap.Names(c.Name))
		s.Downstream = downstream(snap, c, v.Rows, s.Trust, now)
		if opts.Auto != nil {
			s.Auto = autoLine(opts.Auto, c.Name)
		}
		v.Servers = append(v.Servers, s)
	}
	for _, s := range snap.Sources {
		if s.Up || len(s.Errors) == 0 {
			continue
		}
		err := s.Errors[len(s.Errors)-1].Err
		reason := readerr.ReasonOf(err)
		v.Down = append(v.Down, down{Container: s.Container, Source: s.Source, Reason: reason, Sentence: readerr.Sentence(reason), Message: err.Error()})
	}
	return v
}

// class is the row's colour: its status, a certificate not yet valid coloured as expired.
func class(r row) string {
	if r.Status == check.NotYetValid {
		return "expired"
	}
	return strings.ToLower(r.Status)
}

func summarize(c rancher.Container, rows []row, files map[string]model.CertFile, now time.Time, t thresholds.Days) server {
	p := c.Profile
	s := server{Name: c.Name, Rancher: rancher.OrUnknown(p.Rancher), K3s: rancher.OrUnknown(p.K3s), Renewal: string(p.Renewal),
		WindowDays: int(p.Window.Hours() / 24), State: string(c.State), Restarts: c.RestartCount}
	for i := range rows { // sorted soonest first
		r := &rows[i]
		if r.Container != c.Name || r.NotAfter.IsZero() { // unreadable, or the trust row
			continue
		}
		class := files[r.Container+"\x00"+r.Source+"\x00"+r.Path].Class.Class
		switch {
		case s.Leaf == nil && (class == rancher.ClassLeaf || class.Serves6443()):
			s.Leaf = r
		case s.UI == nil && class == rancher.ClassUI:
			s.UI = r
		}
	}
	if s.Leaf == nil {
		return s
	}
	s.Gap = s.UI != nil && s.Leaf.NotAfter.Sub(now) < t.WarningIn() && s.UI.NotAfter.Sub(s.Leaf.NotAfter) > t.GapOf()
	if p.RenewsOnStart(s.Leaf.Path, s.Leaf.NotAfter.Sub(now)) {
		s.Advice = "Restart the container: k3s renews its certificates on start. docker restart " + c.Name +
			", or rancher-cert-exporter rotate --rancher.container " + c.Name + ", which backs up first and verifies."
	} else {
		s.Advice = "Rotate the k3s certificates: a start of this release does not renew them. rancher-cert-exporter rotate --rancher.container " +
			c.Name + " backs them up, renews them and verifies the server runs."
	}
	return s
}

// listenerLine says that 2.3's 6443 certificate could not be checked, when it never could: it
// lives in the cluster, readable only while the container's API server answers.
func listenerLine(snap model.Snapshot, c rancher.Container) string {
	for _, s := range snap.Sources {
		if s.Container != c.Name || s.Source != model.SourceListener {
			continue
		}
		if len(s.Certs) > 0 {
			return "" // its row says it
		}
		if len(s.Errors) > 0 {
			return "not checked: " + readerr.ReasonOf(s.Errors[0].Err) + " — " + s.Errors[0].Err.Error()
		}
	}
	return fmt.Sprintf("not checked: it lives in %s, read through the container's API server, which answers only while the container runs (it is %s)", model.ListenerPath, c.State)
}

// autoLine says when the scheduler rotates a container, and why.
// Planner is what the page asks of automatic rotation: its mode, and its last decision about
// a container (*autorotate.Scheduler).
type Planner interface {
	Mode() string
	Planned(container string) (autorotate.Decision, bool)
}

func autoLine(sched Planner, container string) string {
	d, ok := sched.Planned(container)
	if !ok {
		return "not decided yet"
	}
	would := ""
	if sched.Mode() == autorotate.Plan {
		would = "would run (plan mode) "
	}
	switch d.Action {
	case autorotate.Rotate:
		return would + "now: " + d.Why
	case autorotate.Wait:
		return would + d.At.UTC().Format("Mon 2006-01-02 15:04 MST") + ": " + d.Why
	case autorotate.Skip:
		return "not planned: " + d.Why
	}
	return "none due: " + d.Why
}

// nameLines lists the names the server's certificates do not cover; when they cover all, one
// line that says how many were checked.
func nameLines(checks []model.NameCheck) []nameLine {
	var out []nameLine
	for _, n := range checks {
		for _, m := range n.Missing {
			out = append(out, nameLine{Path: n.Path, Name: m.Name, By: m.By})
		}
	}
	if len(out) == 0 && len(checks) > 0 {
		out = []nameLine{{Checked: len(checks)}}
	}
	return out
}

// lostAfter is how long after a change of the cacerts checksum a lost cluster is put down to it.
const lostAfter = 24 * time.Hour

// downstream is the view of the clusters a server manages, nil when none were read.
func downstream(snap model.Snapshot, c rancher.Container, rows []row, trust *trustLine, now time.Time) *downstreamView {
	clusters := snap.Clusters(c.Name)
	if clusters == nil {
		return nil
	}
	v := &downstreamView{Blocks: !c.Profile.RKE1Blocks()}
	disconnected := 0
	for _, d := range clusters {
		cr := clusterRow{ID: d.ID, DisplayName: d.DisplayName, Driver: d.Driver, Connected: d.Connected, Since: d.Since}
		for i := range rows { // soonest first
			if r := &rows[i]; r.Container == c.Name && r.Source == model.SourceDownstream && strings.HasPrefix(r.Path, d.ID+"/") && !r.NotAfter.IsZero() {
				cr.Soonest = r
				break
			}
		}
		if d.RKE1 {
			v.RKE1++
		}
		if !d.Connected {
			disconnected++
		}
		v.Clusters = append(v.Clusters, cr)
	}
	changed, ok := snap.CACertsChanged[c.Name]
	switch {
	case disconnected == 0:
	case trust != nil && trust.Checked && !trust.Trusted:
		v.Lost, v.Why = true, "the UI certificate no longer verifies against what the agents trust"
	case ok && now.Sub(changed) < lostAfter:
		v.Lost, v.Why = true, "the cacerts checksum the agents pin changed at "+changed.UTC().Format("2006-01-02 15:04 MST")
	}
	return v
}
