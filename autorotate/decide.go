// Package autorotate rotates the k3s certificates of Rancher containers before they expire, at
// the next opening of a maintenance window, through the same crash-safe jobs as the API and the
// CLI. Off unless asked for; in plan mode it only says what it would do.
package autorotate

import (
	"fmt"
	"path"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Modes of --rotation.auto.
const (
	Off  = "off"
	Plan = "plan"
	On   = "on"
)

// Config is when automatic rotations run.
type Config struct {
	Mode    string
	Before  time.Duration // rotate what expires within this long
	Window  Window
	Backoff time.Duration // after a failure, no new attempt for this long
}

// Actions of a decision.
const (
	Rotate = "rotate" // now
	Wait   = "wait"   // until At: the window's opening or the backoff's end
	None   = "none"   // nothing due
	Skip   = "skip"   // due, but not ours to rotate now: Why says why
)

// Decision is what the scheduler does about one container, and why.
type Decision struct {
	Container string
	Action    string
	At        time.Time // when it rotates (Rotate, Wait)
	Expires   time.Time // the earliest expiry that the rotation renews
	Path      string    // of that certificate
	Why       string
}

// decide is the rule: a container whose earliest renewable certificate expires within Before
// is rotated at the next opening of the window, at once when it has expired (the server is
// down already), never within Backoff of a failed automatic rotation and never when it is
// stopped.
func decide(now time.Time, c rancher.Container, certs []model.CertFile, cfg Config, lastFailure time.Time) Decision {
	d := Decision{Container: c.Name, Action: None}
	var earliest model.CertFile
	for _, cf := range certs {
		if renewedByRotation(c, cf, now) && (earliest.Cert == nil || cf.Cert.NotAfter.Before(earliest.Cert.NotAfter)) {
			earliest = cf
		}
	}
	if earliest.Cert == nil {
		d.Why = "no k3s certificate read yet"
		return d
	}
	d.Expires, d.Path = earliest.Cert.NotAfter, earliest.Path
	what := name(earliest)
	switch {
	case d.Expires.Sub(now) > cfg.Before:
		d.Why = fmt.Sprintf("earliest certificate a rotation renews, %s, expires %s, not within %s", what, stamp(d.Expires), days(cfg.Before))
		return d
	case !c.Up():
		d.Action = Skip
		d.Why = fmt.Sprintf("%s expires %s, but the container is %s: a stopped server is not rotated automatically; start it, or rotate it by hand", what, stamp(d.Expires), c.State)
		return d
	}
	d.At = now
	expired := !d.Expires.After(now)
	if until := lastFailure.Add(cfg.Backoff); !lastFailure.IsZero() && until.After(now) {
		d.At = until
	}
	if !expired {
		d.At = cfg.Window.Next(d.At)
	}
	reason := fmt.Sprintf("%s expires %s", what, stamp(d.Expires))
	switch {
	case expired && earliest.Class.Class == rancher.ClassInCluster:
		reason = fmt.Sprintf("%s expired %s: what depends on it fails now, so the window does not wait", what, stamp(d.Expires))
	case expired:
		reason = fmt.Sprintf("%s expired %s: the server is down, so the window does not wait", what, stamp(d.Expires))
	}
	switch {
	case d.At.After(now) && d.At.Equal(lastFailure.Add(cfg.Backoff)):
		d.Action, d.Why = Wait, reason+fmt.Sprintf("; the last automatic rotation failed %s, so not before %s", stamp(lastFailure), stamp(d.At))
	case d.At.After(now):
		d.Action, d.Why = Wait, reason+fmt.Sprintf("; at the next opening of the window %s", cfg.Window)
	default:
		d.Action, d.Why = Rotate, reason
	}
	return d
}

// name is what the operator knows a certificate by: a secret's or the ListenerConfig's
// namespace/name, a file's base name.
func name(cf model.CertFile) string {
	switch cf.Class.Class {
	case rancher.ClassInCluster, rancher.ClassServingSecret:
		return path.Dir(cf.Path) // namespace/name/tls.crt
	case rancher.ClassListenerConfig:
		return "the ListenerConfig " + cf.Path
	}
	return path.Base(cf.Path)
}

// renewedByRotation tells whether a rotation with strategy auto renews one of the container's
// certificates: its role says (k3s's leaves and 6443 certificate, the serving secret where k3s
// reloads it, an in-cluster certificate whose owner will not renew it in time).
func renewedByRotation(c rancher.Container, cf model.CertFile, now time.Time) bool {
	return cf.Container == c.Name && cf.Cert != nil && cf.Class.RotationRenews(cf.Cert.NotAfter.Sub(now))
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
