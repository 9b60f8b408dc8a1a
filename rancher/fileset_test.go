package rancher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClassifyTheK3sFixture: every certificate of server/tls that k3s v0.8.1's own code wrote is in
// 2.3's file set and in use, CAs as CAs; and the set has nothing more.
func TestClassifyTheK3sFixture(t *testing.T) {
	p := ProfileOf(Versions{Rancher: "v2.3.1", K3s: "v0.8.0"})
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "k3s-v0.8.1-tls", "server", "tls", "*.crt"))
	if len(files) < 10 {
		t.Fatalf("%d fixture files", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		got := p.Classify(ServerTLSDir+"/"+name, strings.HasSuffix(name, "-ca.crt"))
		want := ClassLeaf
		if strings.HasSuffix(name, "-ca.crt") {
			want = ClassCA
		}
		if got.Class != want {
			t.Errorf("%s: %s, want %s", name, got.Class, want)
		}
		if _, ok := p.Files()[ServerTLSDir+"/"+name]; !ok {
			t.Errorf("%s, written by k3s v0.8.1, is not in 2.3's file set", name)
		}
	}
	if n := len(p.Files()); n != len(files) {
		t.Errorf("2.3's file set has %d files, k3s v0.8.1 wrote %d", n, len(files))
	}
	if _, err := os.Stat(filepath.Join("..", "testdata", "k3s-v0.8.1-tls", "server", "tls", "dynamic-cert.json")); err == nil {
		t.Error("the fixture has a dynamic-cert.json: k3s v0.8 keeps its listener in the cluster")
	}
}

// TestClassifyLeftovers: what each upgrade leaves, by k3s release, and what is never unused.
func TestClassifyLeftovers(t *testing.T) {
	tls := ServerTLSDir + "/"
	for _, tt := range []struct {
		rancher, k3s, file string
		want               Class
		leftBy             string
	}{
		{"v2.5.7", "v1.18.8+k3s1", tls + "client-cloud-controller.crt", ClassLeaf, ""},
		{"v2.6.0", "v1.21.3+k3s1", tls + "client-cloud-controller.crt", ClassUnused, "k3s before v1.21.2"},
		{"v2.6.0", "v1.21.3+k3s1", tls + "client-k3s-cloud-controller.crt", ClassLeaf, ""},
		{"v2.10.3", "v1.31.1+k3s1", tls + "client-kube-proxy.crt", ClassLeaf, ""},
		{"v2.11.3", "v1.32.1+k3s1", tls + "client-kube-proxy.crt", ClassUnused, "k3s before v1.32.1"},
		{"v2.11.3", "v1.32.1+k3s1", tls + "client-k3s-controller.crt", ClassUnused, "k3s before v1.32.1"},
		{"v2.11.3", "v1.32.1+k3s1", AgentDir + "/client-kube-proxy.crt", ClassLeaf, ""},
		{"v2.12.3", "v1.33.1+k3s1", tls + "kube-scheduler/kube-scheduler.crt", ClassLeaf, ""},
		{"v2.7.5", "v1.26.4+k3s1", tls + "client-supervisor.crt", ClassUnused, "an earlier k3s"},
		{"v2.10.3", "v1.31.1+k3s1", tls + "client-supervisor.crt", ClassLeaf, ""},
		{"v2.4.8", "v1.17.2+k3s1", tls + "dynamic-cert.json", ClassListenerCache, ""},
		{"v2.3.1", "v0.8.0", ManagementTLSDir + "/localhost.crt", ClassLegacy, "Rancher 2.0–2.2"},
		// A file no release is known to write is never called unused: a newer k3s may write it.
		{"v2.12.3", "v1.33.1+k3s1", tls + "client-something-new.crt", ClassLeaf, ""},
		// Without a known release nothing is unused.
		{"", "", tls + "client-cloud-controller.crt", ClassLeaf, ""},
		{"v2.12.3", "v1.33.1+k3s1", "/etc/ssl/other.crt", ClassOther, ""},
	} {
		p := ProfileOf(Versions{Rancher: tt.rancher, K3s: tt.k3s})
		got := p.Classify(tt.file, false)
		if got.Class != tt.want || got.LeftBy != tt.leftBy {
			t.Errorf("%s %s on %s: %+v, want %s left by %q", tt.file, tt.k3s, tt.rancher, got, tt.want, tt.leftBy)
		}
	}
}
