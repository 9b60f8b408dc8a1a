package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// release is what a Rancher release keeps in its data directory, as the exporter's table of
// release file sets (rancher.Profile.Files) has it; TestSimulatorTree holds each simulated
// release to it. Paths are relative to /var/lib/rancher/k3s, without ".crt".
type release struct {
	files             map[string]bool // certificate files, CAs marked; dynamic-cert.json with its suffix
	agent, legacy     bool
	windowDays        int // on-start renewal window; 0: never renews
	servingFromSecret bool
	listenerConfig    bool // 2.3: the 6443 certificate lives in the cluster, not a file
}

func releaseOf(t testing.TB, p harness.Profile) release {
	t.Helper()
	prof := rancher.ProfileOf(rancher.Versions{Rancher: p.Rancher, K3s: p.K3s})
	files := prof.Files()
	if files == nil {
		t.Fatalf("no file set for %s (k3s %s)", p.Rancher, p.K3s)
	}
	r := release{files: map[string]bool{}, windowDays: int(prof.Window.Hours() / 24), servingFromSecret: prof.ServingFromSecret(), listenerConfig: prof.ListenerConfig}
	for f, ca := range files {
		r.files[strings.TrimSuffix(strings.TrimPrefix(f, "/var/lib/rancher/k3s/"), ".crt")] = ca
	}
	for _, l := range prof.Locations {
		r.agent = r.agent || l.Dir == rancher.AgentDir
	}
	r.legacy = slices.Contains(p.Sim, "SIM_LEGACY_TLS=true") // the simulated install began on 2.0–2.2
	return r
}

// cas are the release's CAs, each with its key: not the copies (the agent's, the nochain ones).
func (r release) cas() []string {
	var out []string
	for f, ca := range r.files {
		if ca && strings.HasPrefix(f, "server/tls/") && !strings.HasSuffix(f, ".nochain") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// leaves are the release's leaf certificates.
func (r release) leaves() []string {
	var out []string
	for f, ca := range r.files {
		if !ca && !strings.HasSuffix(f, "dynamic-cert.json") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// certFiles counts the certificate files (*.crt and the listener cache) of the k3s tree.
func (r release) certFiles() int { return len(r.files) }

// keys is the least number of key files of the k3s tree: one per CA and leaf.
func (r release) keys() int { return len(r.cas()) + len(r.leaves()) }

// verifyLeaf checks with openssl that a leaf of a copied tree is signed by one of its CAs.
func verifyLeaf(t *testing.T, root, leaf string, r release) {
	t.Helper()
	var bundle []byte
	for _, ca := range r.cas() {
		data, err := os.ReadFile(filepath.Join(root, ca+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, data...)
	}
	file := filepath.Join(t.TempDir(), "cas.crt")
	os.WriteFile(file, bundle, 0o644)
	openssl(t, "verify", "-CAfile", file, filepath.Join(root, leaf+".crt"))
}

// legacyFiles are the certificates 2.0–2.2 left, relative to /var/lib/rancher.
var legacyFiles = []string{"management-state/tls/ca.crt", "management-state/tls/localhost.crt", "management-state/tls/token-ca.crt", "management-state/tls/token-node.crt"}

// copyTree copies what a container keeps of its certificates — server/, the files at the top
// of agent/ and management-state/tls — into a temporary directory through the archive
// endpoint, and returns the copy of /var/lib/rancher/k3s (management-state sits beside it).
// It works on stopped and crash-looping containers, and it leaves containerd's state, which
// is hundreds of megabytes on the bulky releases, unwritten.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	return copyTreeFrom(t, engine.Client, name)
}

// copyTreeFrom is copyTree through another engine.
func copyTreeFrom(t *testing.T, cli *client.Client, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, src := range []string{"/var/lib/rancher/k3s/server", "/var/lib/rancher/k3s/agent", "/var/lib/rancher/management-state/tls"} {
		res, err := cli.CopyFromContainer(context.Background(), name, client.CopyFromContainerOptions{SourcePath: src})
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			t.Fatalf("copy %s from %s: %v", src, name, err)
		}
		topOnly := path.Base(src) == "agent"
		extract(t, res.Content, filepath.Join(dir, strings.TrimPrefix(path.Dir(src), "/var/lib/rancher")), topOnly)
		res.Content.Close()
	}
	return filepath.Join(dir, "k3s")
}

func extract(t *testing.T, r io.Reader, into string, topOnly bool) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || topOnly && strings.Count(hdr.Name, "/") > 1 {
			continue
		}
		file := filepath.Join(into, filepath.FromSlash(hdr.Name))
		os.MkdirAll(filepath.Dir(file), 0o755)
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
