package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/go-kit/log"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/collector"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

func benchSim(b *testing.B, stopped bool) *harness.Sim {
	sim := engine.StartSim(b, harness.SimOptions{})
	engine.WaitLog(b, sim.ID, simReady, 30*time.Second)
	if stopped {
		docker(b, "stop", sim.Name)
	}
	return sim
}

// BenchmarkBareArchiveCall is the floor: the archive calls of one tree, read and dropped.
func BenchmarkBareArchiveCall(b *testing.B) {
	sim := benchSim(b, false)
	ctx := context.Background()
	sources := rancher.Sources(rancher.ProfileOf(rancher.Versions{Rancher: sim.Profile.Rancher}).Locations, false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, src := range sources {
			res, err := engine.Client.CopyFromContainer(ctx, sim.ID, client.CopyFromContainerOptions{SourcePath: src.Path})
			if errdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Content)
			res.Content.Close()
		}
	}
}

func benchWarmCollect(b *testing.B, stopped bool) {
	sim := benchSim(b, stopped)
	c := collector.New(collector.Config{Client: engine.Client, Docker: collector.DockerConfig{Containers: []string{sim.Name}}}, log.NewNopLogger())
	ctx := context.Background()
	c.Gather(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := len(c.Gather(ctx).Certs()); n < releaseOf(b, sim.Profile).certFiles() {
			b.Fatalf("%d certificates", n)
		}
	}
}

// BenchmarkWarmCollect is one container's gather with parsed certificates cached: inspect,
// the archive calls and, for a running container, the UI handshake.
func BenchmarkWarmCollect(b *testing.B)        { benchWarmCollect(b, false) }
func BenchmarkWarmCollectStopped(b *testing.B) { benchWarmCollect(b, true) }

// BenchmarkExporterFiles10k scrapes the real binary reading 10,000 host certificate files and
// reports the warm scrape time and the exporter's resident memory afterwards.
func BenchmarkExporterFiles10k(b *testing.B) {
	dir := b.TempDir()
	data := []byte(openssl(b, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "/dev/null", "-subj", "/CN=bench", "-days", "30"))
	for i := 0; i < 10000; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%100), fmt.Sprintf("c%05d.crt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, data, 0o644)
	}
	e := startExporter(b, nil, "--no-rancher.discover", "--files.path", dir)
	cold := time.Now()
	scrapeBody(b, e)
	b.ReportMetric(float64(time.Since(cold).Milliseconds()), "cold-scrape-ms")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if body := scrapeBody(b, e); strings.Count(body, "cert_not_after_seconds{") != 10000 {
			b.Fatal("scrape lacks series")
		}
	}
	b.StopTimer()
	b.ReportMetric(rssMB(b, e.cmd.Process.Pid), "rss-MB")
}

func scrapeBody(b *testing.B, e *exporter) string {
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func rssMB(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
