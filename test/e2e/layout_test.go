package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// release is what a Rancher release keeps in its data directory, from the field: the
// agent's certificates from 2.5, embedded etcd's from 2.6.3, and on 2.3 the certificates
// 2.0–2.2 left in management-state/tls.
type release struct {
	agent, etcd, legacy bool
	windowDays          int // on-start renewal window; 0: never renews
	servingFromSecret   bool
}

var releases = map[string]release{
	"v2.3.1":  {legacy: true},
	"v2.4.8":  {windowDays: 90, servingFromSecret: true},
	"v2.5.7":  {agent: true, windowDays: 90, servingFromSecret: true},
	"v2.7.5":  {agent: true, etcd: true, windowDays: 90},
	"v2.12.3": {agent: true, etcd: true, windowDays: 120},
}

func releaseOf(t testing.TB, p harness.Profile) release {
	t.Helper()
	r, ok := releases[p.Rancher]
	if !ok {
		t.Fatalf("no field layout for %s", p.Rancher)
	}
	return r
}

// cas and leaves are k3s's certificates of a release, relative to /var/lib/rancher/k3s, without
// ".crt"; leaves map to the CA that signs them.
func (r release) cas() []string {
	out := []string{"server/tls/server-ca", "server/tls/client-ca", "server/tls/request-header-ca"}
	if r.etcd {
		out = append(out, "server/tls/etcd/server-ca", "server/tls/etcd/peer-ca")
	}
	return out
}

func (r release) leaves() map[string]string {
	out := map[string]string{
		"server/tls/client-admin":           "server/tls/client-ca",
		"server/tls/client-auth-proxy":      "server/tls/request-header-ca",
		"server/tls/client-controller":      "server/tls/client-ca",
		"server/tls/client-kube-apiserver":  "server/tls/client-ca",
		"server/tls/client-kube-proxy":      "server/tls/client-ca",
		"server/tls/client-scheduler":       "server/tls/client-ca",
		"server/tls/serving-kube-apiserver": "server/tls/server-ca",
	}
	if r.etcd {
		out["server/tls/etcd/server-client"] = "server/tls/etcd/server-ca"
		out["server/tls/etcd/peer-server-client"] = "server/tls/etcd/peer-ca"
		out["server/tls/etcd/client"] = "server/tls/etcd/server-ca"
	}
	if r.agent {
		out["agent/client-kubelet"] = "server/tls/client-ca"
		out["agent/serving-kubelet"] = "server/tls/server-ca"
		out["agent/client-kube-proxy"] = "server/tls/client-ca"
	}
	return out
}

// certFiles counts the certificate files (*.crt and the listener cache) of the k3s tree.
func (r release) certFiles() int {
	n := len(r.cas()) + len(r.leaves()) + 1
	if r.agent {
		n += 2 // the agent's copies of server-ca and client-ca
	}
	return n
}

// keys counts the key files of the k3s tree: one per CA and leaf, and service.key.
func (r release) keys() int { return len(r.cas()) + len(r.leaves()) + 1 }

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
