package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// TestFirstRunWithoutRancher runs the exporter on an engine of its own with no Rancher
// container, as on a new user's host: it says once that it found none, where it looked and what
// to do, in the log and on the page, with rancher_cert_exporter_containers 0; when a Rancher
// container appears it says once which, and the gauge counts it.
func TestFirstRunWithoutRancher(t *testing.T) {
	t.Parallel()
	second := secondEngine(t, "rce-d3")
	e := startExporter(t, []string{"DOCKER_HOST=" + second.Host})
	for range 3 {
		mfs := e.scrape(t)
		if v := value(t, mfs, "rancher_cert_exporter_containers", nil); v != 0 {
			t.Fatalf("containers = %v on an engine without Rancher", v)
		}
		if v := value(t, mfs, "rancher_cert_exporter_docker_up", nil); v != 1 {
			t.Fatalf("docker_up = %v", v)
		}
	}
	log := e.log.String()
	if strings.Count(log, "no Rancher container found") != 1 || !strings.Contains(log, second.Host) || !strings.Contains(log, "rancher/rancher images") {
		t.Errorf("want one line saying no Rancher container was found, with the engine and the images looked for:\n%s", log)
	}
	page := e.page(t)
	for _, want := range []string{"No Rancher container found.", "on the Docker engine at " + second.Host, "--rancher.container NAME", "make demo"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	image := harness.V2123.Image
	if out, err := exec.Command("sh", "-c", fmt.Sprintf("docker save %s | docker -H %s load", image, second.Host)).CombinedOutput(); err != nil {
		t.Fatalf("load %s into the second engine: %v\n%s", image, err, out)
	}
	name := harness.RandomName("rce-sim")
	if out, err := exec.Command("docker", "-H", second.Host, "run", "-d", "--name", name, "--network", "none", image).CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if value(t, e.scrape(t), "rancher_cert_exporter_containers", nil) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new Rancher container is not counted:\n%s", e.log)
		}
	}
	e.scrape(t)
	log = e.log.String()
	if strings.Count(log, "found Rancher container") != 1 || !strings.Contains(log, "container="+name) || !strings.Contains(log, "rancher_version="+harness.V2123.Rancher) {
		t.Errorf("want one line naming the container found and its release:\n%s", log)
	}
	if strings.Count(log, "no Rancher container found") != 1 {
		t.Errorf("the none-found line was repeated:\n%s", log)
	}
}
