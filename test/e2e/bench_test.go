package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// The benchmarks run the real binary; make bench runs each once (-benchtime 1x) and reports
// figures, not pass or fail.

// BenchmarkArchiveCall is what one call of the archive endpoint costs on this engine, for the
// server/tls tree of a 2.3 container: the unit every tree read pays.
func BenchmarkArchiveCall(b *testing.B) {
	sim := engine.StartSim(b, harness.SimOptions{})
	engine.WaitLog(b, sim.ID, simReady, 30*time.Second)
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

// BenchmarkConcurrentScrapers: 100 concurrent scrapers (wrk) for 10 s against a 2.3 server
// that is healthy, one whose kubeconfig is gone (its cluster sources fail at every read), and
// one that crash-loops on an expired certificate, and a healthy 2.12 server; the engine calls
// counted through a proxy.
func BenchmarkConcurrentScrapers(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed: apt-get install wrk")
	}
	for _, tc := range []struct {
		name    string
		opts    harness.SimOptions
		prepare func(b *testing.B, sim *harness.Sim)
	}{
		{"healthy", harness.SimOptions{Profile: harness.V23}, nil},
		// 2.12 has Rancher's settings: the trust of the UI chain on every scrape too.
		{"healthy-2.12", harness.SimOptions{Profile: harness.V2123}, nil},
		{"no-kubeconfig", harness.SimOptions{Profile: harness.V23}, func(b *testing.B, sim *harness.Sim) {
			docker(b, "exec", sim.Name, "rm", "/etc/rancher/k3s/k3s.yaml")
		}},
		{"crash-loop", harness.SimOptions{Profile: harness.V23, LeafDays: -2, CrashLoop: true}, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sim := engine.StartSim(b, tc.opts)
			if tc.opts.CrashLoop {
				waitRestarts(b, sim, 1)
			} else {
				engine.WaitLog(b, sim.ID, simReady, 30*time.Second)
			}
			if tc.prepare != nil {
				tc.prepare(b, sim)
			}
			proxy := newEngineProxy(b)
			e := startExporter(b, proxy.env(), "--rancher.container", sim.Name)
			scrapeBody(b, e)             // the first read
			time.Sleep(31 * time.Second) // past the read that follows a fresh start once it settled
			scrapeBody(b, e)
			calls, archives := len(proxy.requests()), proxy.archives.Load()
			kubeconfigs, inspections := proxy.count("/archive", "/etc/rancher/k3s/k3s.yaml"), proxy.count("GET /v", "/containers/", "/json")
			dockerd := dockerdPID(b)
			before := map[int]time.Duration{e.cmd.Process.Pid: cpuTime(b, e.cmd.Process.Pid), dockerd: cpuTime(b, dockerd)}
			b.ResetTimer()
			var p50, p99, rps float64
			for n := 0; n < b.N; n++ {
				out, err := exec.Command("wrk", "-t2", "-c100", "-d10s", "--latency", "-H", "Accept-Encoding: gzip",
					"-H", "X-Prometheus-Scrape-Timeout-Seconds: 10", e.url+"/metrics").CombinedOutput()
				if err != nil {
					b.Fatalf("wrk: %v\n%s", err, out)
				}
				text := string(out)
				if strings.Contains(text, "Non-2xx") || strings.Contains(text, "Socket errors") {
					b.Fatalf("failed requests:\n%s", text)
				}
				p50, p99, rps = wrkMs(b, text, "50%"), wrkMs(b, text, "99%"), wrkField(b, text, "Requests/sec:")
			}
			b.StopTimer()
			b.ReportMetric(p50, "p50-ms")
			b.ReportMetric(p99, "p99-ms")
			b.ReportMetric(rps, "req/s")
			served := rps * 10 * float64(b.N)
			b.ReportMetric(float64((cpuTime(b, e.cmd.Process.Pid)-before[e.cmd.Process.Pid]).Microseconds())/served, "exporter-cpu-us/req")
			b.ReportMetric(float64((cpuTime(b, dockerd)-before[dockerd]).Microseconds())/served, "dockerd-cpu-us/req")
			b.ReportMetric(float64(len(proxy.requests())-calls), "engine-calls")
			b.ReportMetric(float64(proxy.archives.Load()-archives), "archive-calls")
			b.ReportMetric(float64(proxy.count("/archive", "/etc/rancher/k3s/k3s.yaml")-kubeconfigs), "kubeconfig-reads")
			b.ReportMetric(float64(proxy.count("GET /v", "/containers/", "/json")-inspections), "inspections")
			b.ReportMetric(rssMB(b, e.cmd.Process.Pid), "rss-MB")
		})
	}
}

// BenchmarkRestartSeen: how long after docker restart returns a scrape (every 50 ms) reports a
// tree read after the new start, the engine's events telling of it; over five restarts, with
// the engine calls each cost.
func BenchmarkRestartSeen(b *testing.B) {
	sim := engine.StartSim(b, harness.SimOptions{Profile: harness.V275, LeafDays: 30})
	engine.WaitLog(b, sim.ID, simReady, 60*time.Second)
	proxy := newEngineProxy(b)
	e := startExporter(b, proxy.env(), "--rancher.container", sim.Name)
	e.log.waitFor(b, "following the Docker engine's events", 10*time.Second)
	reads := func() float64 {
		return value(b, e.scrape(b), "rancher_cert_exporter_tree_reads_total", map[string]string{"container": sim.Name})
	}
	const restarts = 5
	var total, worst time.Duration
	calls := len(proxy.requests())
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := 0; i < restarts; i++ {
			before := reads()
			docker(b, "restart", "-t", "10", sim.Name)
			start := time.Now()
			for reads() <= before {
				time.Sleep(50 * time.Millisecond)
			}
			took := time.Since(start)
			total += took
			worst = max(worst, took)
			time.Sleep(6 * time.Second) // past the reads that follow a start
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*restarts), "restart-seen-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
	b.ReportMetric(float64(len(proxy.requests())-calls)/float64(b.N*restarts), "engine-calls/restart")
	b.ReportMetric(float64(proxy.count("GET /v", "/containers/", "/json"))/float64(b.N*restarts), "inspections/restart")
}

// BenchmarkDownstreamClusters: a 2.12 server managing 500 RKE1 clusters of 8 certificates each,
// read by an exporter with the downstream source and by one without it: 100 concurrent scrapers
// for 10 s on each, the resident memory of each, and how long one list of the clusters takes.
func BenchmarkDownstreamClusters(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed: apt-get install wrk")
	}
	sim := engine.StartSim(b, harness.SimOptions{Profile: harness.V2123})
	engine.WaitLog(b, sim.ID, simReady, time.Minute)
	docker(b, "exec", sim.Name, "ranchersim", "cluster", "bulk", "--count", "500", "--certs", "8")
	without := startExporter(b, nil, "--rancher.container", sim.Name, "--no-rancher.downstream")
	with := startExporter(b, nil, "--rancher.container", sim.Name)
	for _, e := range []*exporter{without, with} {
		scrapeBody(b, e)
	}
	if n := strings.Count(scrapeBody(b, with), `source="downstream"`); n < 4000 {
		b.Fatalf("%d downstream series, want 4000", n)
	}
	load := func(e *exporter) (p99, rps float64) {
		out, err := exec.Command("wrk", "-t2", "-c100", "-d10s", "--latency", "-H", "Accept-Encoding: gzip",
			"-H", "X-Prometheus-Scrape-Timeout-Seconds: 10", e.url+"/metrics").CombinedOutput()
		if err != nil {
			b.Fatalf("wrk: %v\n%s", err, out)
		}
		return wrkMs(b, string(out), "99%"), wrkField(b, string(out), "Requests/sec:")
	}
	b.ResetTimer()
	var p99Without, p99With, rpsWithout, rpsWith float64
	for n := 0; n < b.N; n++ {
		p99Without, rpsWithout = load(without)
		p99With, rpsWith = load(with)
	}
	b.StopTimer()
	list := value(b, with.scrape(b), "rancher_cert_exporter_source_duration_seconds", map[string]string{"container": sim.Name, "source": "downstream"})
	b.ReportMetric(p99Without, "p99-ms-without")
	b.ReportMetric(p99With, "p99-ms-with")
	b.ReportMetric(rpsWithout, "req/s-without")
	b.ReportMetric(rpsWith, "req/s-with")
	b.ReportMetric(rssMB(b, without.cmd.Process.Pid), "rss-MB-without")
	b.ReportMetric(rssMB(b, with.cmd.Process.Pid), "rss-MB-with")
	b.ReportMetric(list*1000, "list-ms")
}

// wrkMs reads a latency percentile of wrk's --latency output, in milliseconds.
func wrkMs(b *testing.B, out, pct string) float64 {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == pct {
			d, err := time.ParseDuration(strings.Replace(f[1], "us", "µs", 1))
			if err != nil {
				b.Fatalf("wrk latency %q: %v", f[1], err)
			}
			return float64(d.Microseconds()) / 1000
		}
	}
	b.Fatalf("no %s latency in:\n%s", pct, out)
	return 0
}

func wrkField(b *testing.B, out, name string) float64 {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	b.Fatalf("no %s in:\n%s", name, out)
	return 0
}

// BenchmarkFiles10k: a warm scrape of 10,000 host certificate files by the real binary, with
// its resident memory, beside the floor measured here in the same run on the same files: one
// walk and stat of them, plus one client_golang encoding of the same 20,000 series.
func BenchmarkFiles10k(b *testing.B) {
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
	body := scrapeBody(b, e)
	coldMs := float64(time.Since(cold).Microseconds()) / 1000
	if n := strings.Count(body, "cert_not_after_seconds{"); n != 10000 {
		b.Fatalf("%d series", n)
	}
	walk, encode := walkFloor(b, dir), encodeFloor(b, body)

	const scrapes = 30
	b.ResetTimer()
	var warm time.Duration
	for n := 0; n < b.N; n++ {
		start := time.Now()
		for i := 0; i < scrapes; i++ {
			scrapeBody(b, e)
		}
		warm += time.Since(start)
	}
	b.StopTimer()
	warmMs := float64(warm.Microseconds()) / 1000 / float64(b.N*scrapes)
	b.ReportMetric(coldMs, "cold-scrape-ms")
	b.ReportMetric(walk, "floor-walk-ms")
	b.ReportMetric(encode, "floor-encode-ms")
	b.ReportMetric(warmMs, "warm-scrape-ms")
	b.ReportMetric(warmMs/(walk+encode), "warm/floor")
	b.ReportMetric(rssMB(b, e.cmd.Process.Pid), "rss-MB")
}

// walkFloor is the best of three walks of dir with a stat of every file, in milliseconds.
func walkFloor(b *testing.B, dir string) float64 {
	best := time.Hour
	for i := 0; i < 3; i++ {
		start := time.Now()
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				os.Stat(p)
			}
			return err
		})
		best = min(best, time.Since(start))
	}
	return float64(best.Microseconds()) / 1000
}

// encodeFloor is the best of three client_golang encodings of the series of a scrape's
// certificate families, as const metrics with the same labels and values, in milliseconds.
func encodeFloor(b *testing.B, scrape string) float64 {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(scrape))
	if err != nil {
		b.Fatal(err)
	}
	var metrics []prometheus.Metric
	for _, name := range []string{"cert_not_after_seconds", "cert_not_before_seconds"} {
		desc := prometheus.NewDesc(name, mfs[name].GetHelp(), []string{"container", "source", "path", "subject_cn", "issuer_cn", "serial_number", "ca"}, nil)
		for _, m := range mfs[name].GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			metrics = append(metrics, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(),
				labels["container"], labels["source"], labels["path"], labels["subject_cn"], labels["issuer_cn"], labels["serial_number"], labels["ca"]))
		}
	}
	if len(metrics) != 20000 {
		b.Fatalf("%d series to encode", len(metrics))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(constCollector(metrics))
	best := time.Hour
	for i := 0; i < 3; i++ {
		start := time.Now()
		families, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range families {
			enc.Encode(mf)
		}
		best = min(best, time.Since(start))
	}
	return float64(best.Microseconds()) / 1000
}

type constCollector []prometheus.Metric

func (c constCollector) Describe(chan<- *prometheus.Desc) {}
func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}

// scrapeBody scrapes as Prometheus does, compressed.
func scrapeBody(b testing.TB, e *exporter) string {
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := http.DefaultClient.Do(req) // asks for gzip and decompresses it
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// cpuTime is the user and system CPU time a process has used.
func cpuTime(b testing.TB, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond // clock ticks of 100 Hz
}

// dockerdPID is the engine's process, for its share of the CPU.
func dockerdPID(b testing.TB) int {
	out, err := exec.Command("pgrep", "-o", "-x", "dockerd").Output()
	if err != nil {
		b.Fatalf("no dockerd process: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

func rssMB(b testing.TB, pid int) float64 {
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

// BenchmarkBulkyTreeRSS: the resident memory of the exporter after the first scrape of a server
// whose server/tls holds 300 more files of 900 KiB named *.crt, beside the same server without
// them; the read of such a tree stops at its bounds (16 MiB, 2,000 files) as too_large.
func BenchmarkBulkyTreeRSS(b *testing.B) {
	for _, bulk := range []int{0, 300} {
		b.Run(fmt.Sprintf("files=%d", bulk), func(b *testing.B) {
			sim := engine.StartSim(b, harness.SimOptions{Profile: harness.V24})
			engine.WaitLog(b, sim.ID, simReady, 30*time.Second)
			if bulk > 0 {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				junk := bytes.Repeat([]byte("x"), 900<<10)
				for i := range bulk {
					tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("bulk-%03d.crt", i), Mode: 0o644, Size: int64(len(junk))})
					tw.Write(junk)
				}
				tw.Close()
				if _, err := engine.Client.CopyToContainer(context.Background(), sim.ID, client.CopyToContainerOptions{
					DestinationPath: "/var/lib/rancher/k3s/server/tls", Content: &buf}); err != nil {
					b.Fatal(err)
				}
			}
			var rss float64
			for n := 0; n < b.N; n++ {
				e := startExporter(b, nil, "--rancher.container", sim.Name, "--no-rancher.secrets")
				body := scrapeBody(b, e)
				if bulk > 0 && !strings.Contains(body, `rancher_cert_exporter_read_errors_total{reason="too_large",source="k3s"} 1`) {
					b.Fatalf("the bulky tree was not refused as too large")
				}
				rss = rssMB(b, e.cmd.Process.Pid)
			}
			b.ReportMetric(rss, "rss-MB")
		})
	}
}
