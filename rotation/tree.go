package rotation

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// tree is the parsed certificate files of a container, by absolute path.
type tree map[string]*x509.Certificate

// readTree reads and parses the k3s certificates of the container's release. Files that do
// not parse are left out: the rotation acts on certificates it understands.
func readTree(ctx context.Context, eng rancher.Engine, c rancher.Container) (tree, error) {
	files, err := rancher.ReadTree(ctx, eng, c.ID, c.Profile.K3sLocations())
	if err != nil {
		return nil, err
	}
	t := tree{}
	for _, f := range files {
		if f.Err == nil {
			t.add(f.Path, f.Data)
		}
	}
	return t, nil
}

// add parses a certificate file or listener cache into the tree; what does not parse is left
// out.
func (t tree) add(p string, data []byte) {
	if !strings.HasSuffix(p, ".crt") && !rancher.IsListenerCache(p) {
		return
	}
	if cert, err := certs.Parse(p, data); err == nil && cert != nil {
		t[p] = cert
	}
}

// inUse is the tree without the files the release neither writes nor renews (left by earlier
// releases): a rotation plans, renews and checks only what k3s writes. The backup keeps all.
func (t tree) inUse(p rancher.Profile) tree {
	out := tree{}
	for f, c := range t {
		if !p.Classify(f, c.IsCA).Class.Unused() {
			out[f] = c
		}
	}
	return out
}

// of lists the files of the classes, sorted.
func (t tree) of(classes ...rancher.Class) []string {
	var out []string
	for p, c := range t {
		if slices.Contains(classes, rancher.ClassOf(p, c.IsCA)) {
			out = append(out, p)
		}
	}
	return sortStrings(out)
}

// leaves are k3s's leaf certificates.
func (t tree) leaves() []string { return t.of(rancher.ClassLeaf) }

// renewable are the leaves and the listener cache: what a start of k3s re-issues.
func (t tree) renewable() []string { return t.of(rancher.ClassLeaf, rancher.ClassListenerCache) }

// due are the renewable certificates that expire within the warning threshold.
func (t tree) due(now time.Time) []string {
	var out []string
	for _, f := range t.renewable() {
		if t[f].NotAfter.Sub(now) < dueWithin {
			out = append(out, f)
		}
	}
	return out
}

// cas are k3s's CA certificates.
func (t tree) cas() []*x509.Certificate {
	var out []*x509.Certificate
	for _, p := range t.of(rancher.ClassCA) {
		out = append(out, t[p])
	}
	return out
}

// notAfter lists NotAfter by path, for the report.
func (t tree) notAfter() map[string]string {
	out := map[string]string{}
	for p, c := range t {
		out[p] = c.NotAfter.UTC().Format("2006-01-02T15:04:05Z")
	}
	return out
}
