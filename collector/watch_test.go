package collector

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/exposition"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
)

// waitFor polls gather until cond holds, and says how long it took.
func waitFor(t *testing.T, w *watchedFiles, what string, cond func(model.SourceResult) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if cond(w.gather(context.Background())) {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: not seen within 5s: %+v", what, w.gather(context.Background()))
	return 0
}

func TestWatchedFilesFollowChangesWithoutScanningPerScrape(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a", "one.crt"), certPEM(t, "one", 1, expiry, false))
	w := newWatchedFiles(newFileSource([]string{dir}), time.Hour, promslog.NewNopLogger(), newErrorTracker(promslog.NewNopLogger(), nil))
	if res := w.gather(context.Background()); len(res.Certs) != 1 {
		t.Fatalf("first gather: %+v", res)
	}
	for i := 0; i < 50; i++ {
		w.gather(context.Background())
	}
	if n := w.completedScans(); n != 1 {
		t.Fatalf("%d scans for 51 gathers without a change", n)
	}

	write(t, filepath.Join(dir, "a", "two.crt"), certPEM(t, "two", 2, expiry, false))
	took := waitFor(t, w, "a new file", func(r model.SourceResult) bool { return len(r.Certs) == 2 })
	t.Logf("a new certificate file showed after %s", took.Round(time.Millisecond))

	write(t, filepath.Join(dir, "b", "deep", "three.crt"), certPEM(t, "three", 3, expiry, false)) // a new directory
	waitFor(t, w, "a file in a new directory", func(r model.SourceResult) bool { return len(r.Certs) == 3 })

	later := expiry.Add(365 * 24 * time.Hour)
	tmp := filepath.Join(dir, "a", ".one.tmp")
	write(t, tmp, certPEM(t, "one", 4, later, false))
	os.Rename(tmp, filepath.Join(dir, "a", "one.crt")) // replaced as k3s does: write, rename
	waitFor(t, w, "a replaced file", func(r model.SourceResult) bool {
		for _, c := range r.Certs {
			if c.Cert.SubjectCN == "one" {
				return c.Cert.NotAfter.Equal(later)
			}
		}
		return false
	})

	os.Remove(filepath.Join(dir, "a", "two.crt"))
	waitFor(t, w, "a removed file", func(r model.SourceResult) bool { return len(r.Certs) == 2 })

	scans := w.completedScans()
	write(t, filepath.Join(dir, "a", "notes.txt"), []byte("not a certificate"))
	os.WriteFile(filepath.Join(dir, "a", "notes.txt"), []byte("still not"), 0o644)
	time.Sleep(3 * settleDelay)
	if n := w.completedScans(); n > scans+1 {
		t.Errorf("writes to a non-certificate file caused %d scans", n-scans)
	}
}

// TestRescanWithoutNotify: on a file system that does not notify, the periodic rescan sees
// the change.
func TestRescanWithoutNotify(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "one.crt"), certPEM(t, "one", 1, expiry, false))
	w := newWatchedFiles(newFileSource([]string{dir}), 100*time.Millisecond, promslog.NewNopLogger(), newErrorTracker(promslog.NewNopLogger(), nil))
	w.notify = false
	w.gather(context.Background())
	write(t, filepath.Join(dir, "two.crt"), certPEM(t, "two", 2, expiry, false))
	waitFor(t, w, "a new file, by rescan", func(r model.SourceResult) bool { return len(r.Certs) == 2 })
}

// TestExpositionEncodedOnlyOnChange: the certificate series are encoded again only when a
// certificate changed; the health series are live in every scrape.
func TestExpositionEncodedOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "one.crt"), certPEM(t, "one", 1, expiry, false))
	c := New(Config{FilePatterns: []string{dir}, FileRescanInterval: 50 * time.Millisecond}, promslog.NewNopLogger())
	x := exposition.New(c)
	h := x.Handler(prometheus.NewRegistry(), promslog.NewNopLogger())
	for i := 0; i < 10; i++ {
		scrape(t, h)
		time.Sleep(15 * time.Millisecond) // several rescans that find nothing new
	}
	if x.Encodes() != 1 {
		t.Fatalf("%d encodings for 10 scrapes without a change", x.Encodes())
	}
	write(t, filepath.Join(dir, "two.crt"), certPEM(t, "two", 2, expiry, false))
	for deadline := time.Now().Add(5 * time.Second); x.Encodes() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a new certificate was never encoded")
		}
		scrape(t, h)
	}
}
