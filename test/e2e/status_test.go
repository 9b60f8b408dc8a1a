package e2e

import (
	"context"
	"flag"
	"math"
	"os"
	"slices"
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
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V257, LeafDays: 4, UIDays: 365})
	engine.WaitLog(t, sim.ID, simReady, 60*time.Second)
	// In plan mode, so that the page shows the automatic rotation line too.
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rotation.auto=plan", "--rotation.window=Sun 02:00-04:00 UTC")
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
	// The certificate rows: the row that says whether agents trust the UI chain has no expiry.
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("tbody tr")].map(tr => [...tr.cells].map(td => td.textContent)).filter(r => r[4] !== "")`))
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

// TestStatusPageAtEveryWidth lays the page out in Chromium at 1024, 1366 and 1920 px with two
// servers, one of them a crash-looping 2.3 whose cluster sources fail with long reasons: the page
// never scrolls sideways, no cell spills over, a path keeps a useful width and breaks only
// after a slash, and the status column says CRITICAL where the critical alert fires.
func TestStatusPageAtEveryWidth(t *testing.T) {
	t.Parallel()
	down := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, LeafDays: -2, CrashLoop: true})
	soon := engine.StartSim(t, harness.SimOptions{Profile: harness.V2123, LeafDays: 3})
	engine.WaitLog(t, soon.ID, simReady, 60*time.Second)
	waitRestarts(t, down, 1)
	e := startExporter(t, nil, "--rancher.container", down.Name, "--rancher.container", soon.Name)
	mfs := e.scrape(t)
	if len(series(mfs, "rancher_cert_exporter_source_up", map[string]string{"container": down.Name})) == 0 {
		t.Fatal("no sources of the crash-looping server")
	}

	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS("table"))); err != nil {
		t.Fatal(err)
	}
	type layout struct {
		PageWidth, ViewWidth float64
		PathWidths           []float64
		Spilled, BrokenPaths []string
		Statuses             [][]string // days left, status
	}
	const measure = `(() => {
		const spills = e => e.scrollWidth > e.clientWidth + 1;
		const brokenInSegment = td => [...td.querySelectorAll(".seg")].some(s => {
			const r = s.getBoundingClientRect(), line = parseFloat(getComputedStyle(s).lineHeight);
			return r.height > 1.5 * line && r.width < td.clientWidth - 16;
		});
		return {
			PageWidth: document.documentElement.scrollWidth, ViewWidth: document.documentElement.clientWidth,
			PathWidths: [...document.querySelectorAll("td.path")].map(td => td.getBoundingClientRect().width),
			Spilled: [...document.querySelectorAll("td, th, dd, li, .banner, .advice")].filter(spills).map(e => e.innerText.slice(0, 80)),
			BrokenPaths: [...document.querySelectorAll("td.path")].filter(brokenInSegment).map(td => td.innerText),
			Statuses: [...document.querySelectorAll("tbody tr")].map(tr => [tr.cells[5].innerText, tr.cells[6].innerText.split(" ")[0]]),
		};
	})()`
	for _, width := range []int64{1024, 1366, 1920} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 900)); err != nil {
			t.Fatal(err)
		}
		l, err := chromedp.Run(ctx, chromedp.Evaluate[layout](measure))
		if err != nil {
			t.Fatal(err)
		}
		if l.PageWidth > l.ViewWidth {
			t.Errorf("%d px: the page is %v px wide in a %v px view", width, l.PageWidth, l.ViewWidth)
		}
		if len(l.PathWidths) == 0 || slices.Min(l.PathWidths) < 0.25*float64(width) {
			t.Errorf("%d px: path columns %v px wide, want at least a quarter of the page", width, l.PathWidths)
		}
		if len(l.Spilled) > 0 {
			t.Errorf("%d px: content spills out of %q", width, l.Spilled)
		}
		if len(l.BrokenPaths) > 0 {
			t.Errorf("%d px: paths broken inside a segment: %q", width, l.BrokenPaths)
		}
		critical := 0
		for _, s := range l.Statuses {
			days, err := strconv.Atoi(s[0])
			if err != nil {
				continue // an unreadable row has no days
			}
			if days >= 0 && days < 7 && s[1] != "CRITICAL" {
				t.Errorf("%d px: a row %d days from expiry says %s", width, days, s[1])
			}
			if s[1] == "CRITICAL" {
				critical++
			}
		}
		if critical == 0 {
			t.Errorf("%d px: no CRITICAL row: %v", width, l.Statuses)
		}
		t.Logf("%d px: page %v px, path column %v px", width, l.PageWidth, slices.Min(l.PathWidths))
	}
}
