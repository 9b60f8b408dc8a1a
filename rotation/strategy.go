package rotation

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/thresholds"
)

// Strategy names what a rotation removes before the restart.
type Strategy string

const (
	// Auto restarts where the release renews on start and a start renews everything due,
	// else Leaf.
	Auto Strategy = "auto"
	// Leaf removes the leaf certificates and the listener cache; every CA and every key stays.
	Leaf Strategy = "leaf"
	// AllCerts removes every *.crt, CAs included, as the field workaround does; k3s then mints
	// new CAs from the kept keys and the first start fails on the listener cache, so a second
	// restart follows.
	AllCerts Strategy = "all-certs"
	// Restart only restarts, for k3s that renews its leaves on start within its window.
	Restart Strategy = "restart"
)

// Strategies lists the strategies a caller may ask for.
var Strategies = []Strategy{Auto, Leaf, AllCerts, Restart}

// dueWithin is how soon a certificate must expire for auto to count it as due: the warning
// threshold of the alerts.
var dueWithin = thresholds.Default.WarningIn()

// ParseStrategy accepts a strategy name; "" means Auto.
func ParseStrategy(s string) (Strategy, error) {
	if s == "" {
		return Auto, nil
	}
	for _, known := range Strategies {
		if Strategy(s) == known {
			return known, nil
		}
	}
	return "", fmt.Errorf("unknown strategy %q: want %s, %s, %s or %s", s, Auto, Leaf, AllCerts, Restart)
}

// choose resolves Auto for a container of profile p whose certificates are t, and says why;
// secrets tells that in-cluster certificates are planned, which a restart alone re-issues.
func choose(s Strategy, p rancher.Profile, t tree, now time.Time, secrets bool) (Strategy, string) {
	if s != Auto {
		return s, fmt.Sprintf("strategy %s was asked for", s)
	}
	release := describe(p)
	switch {
	case secrets && !p.ListenerConfig && len(t.due(now)) == 0:
		return Restart, "no k3s certificate is due, so none is removed: the restart has the owners of the secrets deleted issue them anew"
	case p.ListenerConfig:
		return AllCerts, release + " never renews its k3s certificates, and mints its 6443 certificate (ListenerConfig kube-system/tls-config) again only for a new server CA: every certificate is removed, keys kept, so that k3s mints new CAs and all that they sign, and the second start follows"
	case p.Renewal == rancher.RenewalNever:
		return Leaf, release + " never renews its k3s certificates: they must be removed and re-issued"
	case p.Renewal == rancher.RenewalUnknown:
		return Leaf, "the Rancher and k3s versions are unknown, so no renewal on start is assumed"
	}
	var renewed, notRenewed []string
	for _, f := range t.renewable() {
		left := t[f].NotAfter.Sub(now)
		switch {
		case p.RenewsOnStart(f, left):
			renewed = append(renewed, f)
		case left < dueWithin:
			notRenewed = append(notRenewed, f)
		}
	}
	window := fmt.Sprintf("%d-day", int(p.Window.Hours()/24))
	switch {
	case len(notRenewed) > 0:
		return Leaf, fmt.Sprintf("%s expires within %d days and a start of %s does not renew it", notRenewed[0], thresholds.Default.Warning, release)
	case len(renewed) == 0:
		return Leaf, fmt.Sprintf("no k3s certificate is inside the %s renewal window of %s, so a restart would renew nothing", window, release)
	}
	return Restart, fmt.Sprintf("%s renews certificates within %s of expiry on start; all %d due are inside that window", release, window, len(renewed))
}

func describe(p rancher.Profile) string {
	switch {
	case p.Rancher != "" && p.K3s != "":
		return fmt.Sprintf("Rancher %s (k3s %s)", p.Rancher, p.K3s)
	case p.Rancher != "":
		return "Rancher " + p.Rancher
	case p.K3s != "":
		return "k3s " + p.K3s
	}
	return "this Rancher"
}

// plan lists the files the strategy removes from the tree.
func plan(s Strategy, t tree) []string {
	var files []string
	switch s {
	case Leaf:
		files = t.renewable()
	case AllCerts:
		for p := range t {
			if strings.HasSuffix(p, ".crt") {
				files = append(files, p)
			}
		}
	}
	return sortStrings(files)
}

// checkRemovable refuses anything but certificate files in the locations of k3s's own
// certificates: keys are never removed, whatever the plan says.
func checkRemovable(files []string) error {
	for _, f := range files {
		if path.Clean(f) != f || !rancher.InK3sLocation(f) || strings.HasSuffix(f, ".key") ||
			!strings.HasSuffix(f, ".crt") && !rancher.IsListenerCache(f) {
			return fmt.Errorf("refusing to remove %q: only .crt files and dynamic-cert.json of k3s", f)
		}
	}
	return nil
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
