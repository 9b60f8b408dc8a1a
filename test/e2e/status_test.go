package e2e

import (
	"context"
	"flag"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

var screenshot = flag.String("screenshot", "", "write a screenshot of the status page to this PNG file (make screenshot)")

// browser starts a headless Chromium for the test, as root and without the network a normal
// start reaches for.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(testenv.Tool(t, "chromium", "chromium")),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestStatusPageInBrowser opens the status page of a server in the gap state in Chromium: the
// banner says the k3s certificates were not renewed and what to do, the table has a row per
// certificate series, and each row's days left is what the metric says.
func TestStatusPageInBrowser(t *testing.T) {
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V257, LeafDays: 4, UIDays: 365})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	e := startExporter(t, nil, "--rancher.container", sim.Name)
	mfs := e.scrape(t) // the page shows this scrape's snapshot
	want := series(mfs, "cert_not_after_seconds", nil)

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	banner, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".banner")))
	if err != nil {
		t.Fatal(err)
	}
	now, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("body"), "data-now"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("tbody tr")].map(tr => [...tr.cells].map(td => td.innerText))`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("banner: %s", banner)
	if !strings.Contains(banner, "not renewed") || !strings.Contains(banner, "expires in 3 days") ||
		!strings.Contains(banner, "docker restart "+sim.Name) {
		t.Errorf("banner %q: want the gap, the leaf's days and what to do on 2.5.7 (restart)", banner)
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows for %d certificate series", len(rows), len(want))
	}
	pageNow, _ := strconv.ParseInt(now.Value, 10, 64)
	days := map[string]string{} // container source path -> days left shown
	prev := math.Inf(-1)
	for _, r := range rows {
		days[r[0]+" "+r[1]+" "+r[2]] = r[5]
		d, _ := strconv.ParseFloat(r[5], 64)
		if d < prev {
			t.Errorf("rows not sorted soonest first at %v", r)
		}
		prev = d
	}
	for _, s := range want {
		key := s.labels["container"] + " " + s.labels["source"] + " " + s.labels["path"]
		expected := strconv.Itoa(int(math.Floor((s.value - float64(pageNow)) / 86400)))
		if days[key] != expected {
			t.Errorf("%s: page shows %q days, the metric says %s", key, days[key], expected)
		}
	}

	if *screenshot != "" {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 760)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", *screenshot, len(png))
	}
}
