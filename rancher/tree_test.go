package rancher

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/enginetest"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// treeEngine is a fake engine with one container, c1, holding the files (absolute path →
// content).
func treeEngine(files map[string]string) *enginetest.Engine {
	c := &enginetest.Container{ID: "c1", Name: "rancher", Files: map[string][]byte{}}
	for p, d := range files {
		c.Files[p] = []byte(d)
	}
	return enginetest.New(c)
}

func TestReadTreeFetchesOnlyCertificates(t *testing.T) {
	files := map[string]string{
		ServerTLSDir + "/server-ca.crt":                         "CA",
		ServerTLSDir + "/server-ca.key":                         "KEY",
		ServerTLSDir + "/etcd/peer-ca.crt":                      "PEER",
		AgentDir + "/client-kubelet.crt":                        "KUBELET",
		AgentDir + "/client-kubelet.key":                        "KEY",
		AgentDir + "/server-ca.crt":                             "CA",
		AgentDir + "/containerd/io.containerd.content/blob.crt": strings.Repeat("x", 1<<16),
		AgentDir + "/images/k3s-airgap-images.tar":              strings.Repeat("x", 1<<16),
	}
	eng := treeEngine(files)
	read, err := ReadTree(context.Background(), eng, "c1", ProfileOf(Versions{Rancher: "v2.7.5"}).Locations)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range read {
		got = append(got, f.Path+"="+string(f.Data))
	}
	sort.Strings(got)
	want := []string{
		AgentDir + "/client-kubelet.crt=KUBELET",
		AgentDir + "/server-ca.crt=CA",
		ServerTLSDir + "/etcd/peer-ca.crt=PEER",
		ServerTLSDir + "/server-ca.crt=CA",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	for _, call := range eng.Calls("archive") {
		if p := strings.TrimPrefix(call, "archive c1 "); p == AgentDir || strings.HasSuffix(p, ".key") {
			t.Errorf("requested %s: a scrape reads certificates only, never the agent directory or a key", p)
		}
	}

	// A release without server/tls is an error; a missing optional location is not.
	eng.Change(func(e *enginetest.Engine) {
		for _, p := range []string{"/server-ca.crt", "/server-ca.key", "/etcd/peer-ca.crt"} {
			delete(e.Container("c1").Files, ServerTLSDir+p)
		}
	})
	if _, err := ReadTree(context.Background(), eng, "c1", ProfileOf(Versions{}).Locations); readerr.ReasonOf(err) != readerr.NotFound {
		t.Fatalf("missing server/tls: %v", err)
	}
}

// TestTreeReadIsBounded: a tree whose certificate files exceed the bounds of one read, in bytes
// or in number, is refused as too large as a whole, before it is held in memory.
func TestTreeReadIsBounded(t *testing.T) {
	locs := ProfileOf(Versions{Rancher: "v2.7.5"}).Locations
	for name, files := range map[string]map[string]string{
		"bytes": func() map[string]string {
			m := map[string]string{}
			for i := range MaxTreeBytes/(900<<10) + 1 {
				m[fmt.Sprintf("%s/big-%03d.crt", ServerTLSDir, i)] = strings.Repeat("x", 900<<10)
			}
			return m
		}(),
		"files": func() map[string]string {
			m := map[string]string{}
			for i := range MaxTreeFiles + 1 {
				m[fmt.Sprintf("%s/many-%04d.crt", ServerTLSDir, i)] = "x"
			}
			return m
		}(),
	} {
		_, err := ReadTree(context.Background(), treeEngine(files), "c1", locs)
		if readerr.ReasonOf(err) != readerr.TooLarge || !strings.Contains(err.Error(), "not read") {
			t.Errorf("%s: %v, want too_large", name, err)
		}
		delete(files, ServerTLSDir+"/big-000.crt")
		delete(files, ServerTLSDir+"/many-0000.crt")
		if _, err := ReadTree(context.Background(), treeEngine(files), "c1", locs); err != nil {
			t.Errorf("%s: one file fewer: %v", name, err)
		}
	}
}

func TestSourcesWithKeys(t *testing.T) {
	var got []string
	for _, s := range Sources([]Location{serverTLS, agentCerts}, true) {
		got = append(got, s.Path)
	}
	joined := strings.Join(got, " ")
	for _, want := range []string{ServerTLSDir, AgentDir + "/client-kubelet.crt", AgentDir + "/client-kubelet.key"} {
		if !strings.Contains(joined+" ", want+" ") {
			t.Errorf("sources %v lack %s", got, want)
		}
	}
	if strings.Contains(joined+" ", AgentDir+" ") {
		t.Error("the whole agent directory is a source")
	}
}
