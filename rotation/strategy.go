package rotation

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// Strategy names what a rotation removes before the restart.
type Strategy string

const (
	// Leaf removes the leaf certificates and the listener cache; every CA and every key stays.
	Leaf Strategy = "leaf"
	// AllCerts removes every *.crt, CAs included, as the field workaround does; k3s then mints
	// new CAs from the kept keys and the first start fails on the listener cache, so a second
	// restart follows.
	AllCerts Strategy = "all-certs"
	// Restart only restarts, for k3s that renews its leaves on start within 90 days of expiry.
	Restart Strategy = "restart"
)

// ParseStrategy accepts a strategy name; "" means Leaf.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case "":
		return Leaf, nil
	case Leaf, AllCerts, Restart:
		return Strategy(s), nil
	}
	return "", fmt.Errorf("unknown strategy %q: want %s, %s or %s", s, Leaf, AllCerts, Restart)
}

// plan lists the files the strategy removes from the tree.
func plan(s Strategy, t tree) []string {
	var files []string
	switch s {
	case Leaf:
		files = t.leaves()
		for p := range t {
			if isDynamicCert(p) {
				files = append(files, p)
			}
		}
	case AllCerts:
		for p := range t {
			if strings.HasSuffix(p, ".crt") {
				files = append(files, p)
			}
		}
	}
	return sortStrings(files)
}

// checkRemovable refuses anything but certificate files inside the k3s directories: keys are
// never removed, whatever the plan says.
func checkRemovable(files []string) error {
	for _, f := range files {
		clean := path.Clean(f)
		inside := false
		for _, dir := range rancher.TreeDirs {
			inside = inside || strings.HasPrefix(clean, dir+"/")
		}
		if clean != f || !inside || strings.HasSuffix(f, ".key") ||
			!(strings.HasSuffix(f, ".crt") || isDynamicCert(f)) {
			return fmt.Errorf("refusing to remove %q: only .crt files and dynamic-cert.json under the k3s directories", f)
		}
	}
	return nil
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
