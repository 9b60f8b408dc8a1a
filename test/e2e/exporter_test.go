package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

var (
	exporterOnce sync.Once
	exporterBin  string
	exporterErr  error
)

// exporterBinary builds the exporter once per run, static as in the image.
func exporterBinary(t testing.TB) string {
	t.Helper()
	exporterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rce-bin")
		if err != nil {
			exporterErr = err
			return
		}
		exporterBin, exporterErr = harness.BuildStatic("./cmd/rancher-cert-exporter", dir)
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterBin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// exporter is the real binary serving on a loopback port.
type exporter struct {
	url string
	log *syncBuffer
	cmd *exec.Cmd
}

// syncBuffer is the output of a process, read while the process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the output holds substr.
func (b *syncBuffer) waitFor(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s in:\n%s", substr, timeout, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startExporter runs the binary with args and waits until /metrics answers.
func startExporter(t testing.TB, env []string, args ...string) *exporter {
	t.Helper()
	port := freePort(t)
	args = append([]string{fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)}, args...)
	cmd := exec.Command(exporterBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	e := &exporter{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &syncBuffer{}, cmd: cmd}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("exporter log:\n%s", e.log)
		}
	})
	waitHTTP(t, e.url+"/")
	return e
}

// waitHTTP waits up to 10s for url to answer.
func waitHTTP(t testing.TB, url string) {
	t.Helper()
	var err error
	for i := 0; i < 100; i++ {
		var resp *http.Response
		if resp, err = http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer: %v", url, err)
}

// scrape returns the metric families of one scrape.
func (e *exporter) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return mfs
}

// page is the status page the exporter serves.
func (e *exporter) page(t testing.TB) string {
	t.Helper()
	return httpGetBody(t, e.url+"/")
}

// timedScrape is one scrape with Prometheus's scrape timeout header, and how long it took.
func (e *exporter) timedScrape(t testing.TB, timeoutSeconds string) (string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeoutSeconds)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(body), time.Since(start)
}

func httpGetBody(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// checkMetrics runs promtool check metrics on a whole scrape: names, types, help and units as
// the Prometheus conventions have them.
func (e *exporter) checkMetrics(t testing.TB) {
	t.Helper()
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(testenv.Tool(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = resp.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on a full scrape: %v\n%s", err, out)
	}
}

// series lists the samples of a family as label maps with their values.
type sample struct {
	labels map[string]string
	value  float64
}

func series(mfs map[string]*dto.MetricFamily, name string, match map[string]string) []sample {
	var out []sample
	mf, ok := mfs[name]
	if !ok {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range match {
			if labels[k] != v {
				continue next
			}
		}
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out = append(out, sample{labels, v})
	}
	return out
}

// value returns the one sample matching, failing otherwise.
func value(t testing.TB, mfs map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	t.Helper()
	s := series(mfs, name, match)
	if len(s) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, match, len(s))
	}
	return s[0].value
}
