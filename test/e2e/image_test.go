package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// runtimeStage returns the last stage of the repository's Dockerfile, copying the binary from
// the build context instead of the build stage (no base image can be pulled here).
func runtimeStage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	stage := text[strings.LastIndex(text, "\nFROM ")+1:]
	if !strings.HasPrefix(stage, "FROM scratch") || !strings.Contains(stage, "COPY --from=build /out/rancher-cert-exporter ") {
		t.Fatalf("unexpected runtime stage:\n%s", stage)
	}
	return strings.Replace(stage, "COPY --from=build /out/rancher-cert-exporter ", "COPY rancher-cert-exporter ", 1)
}

func TestExporterImageAgainstEngineSocket(t *testing.T) {
	socket := strings.TrimPrefix(engine.Host, "unix://")
	if socket == engine.Host {
		t.Skip("engine is not on a unix socket")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(socket, &st); err != nil {
		t.Fatal(err)
	}
	buildCtx, err := harness.ContextTar(map[string]string{"rancher-cert-exporter": exporterBinary(t)}, runtimeStage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	image := "rancher-cert-exporter:e2e"
	if err := harness.BuildImage(context.Background(), engine.Client, buildCtx, image); err != nil {
		t.Fatal(err)
	}

	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 60})
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	port := freePort(t)
	name := harness.RandomName("rce-exporter")
	docker(t, "run", "-d", "--name", name, "--label", harness.ImageLabel+"=true", "--network", "host",
		"--group-add", itoa(int(st.Gid)), "-v", socket+":/var/run/docker.sock:ro",
		image, "--web.listen-address=127.0.0.1:"+itoa(port))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(docker(t, "logs", name))
		}
		docker(t, "rm", "-f", name)
	})
	e := &exporter{url: "http://127.0.0.1:" + itoa(port)}
	waitHTTP(t, e.url+"/metrics")
	assertTreeMatchesOpenSSL(t, e, sim)
	if ui := series(e.scrape(t), "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "ui"}); len(ui) != 1 {
		t.Fatalf("containerised exporter: %d ui series", len(ui))
	}
	if user := strings.TrimSpace(docker(t, "inspect", "-f", "{{.Config.User}}", name)); user != "65534:65534" {
		t.Errorf("image runs as %q, want nobody", user)
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.version":  "dev", // a build without --build-arg VERSION
		"org.opencontainers.image.revision": "unknown",
		"org.opencontainers.image.source":   "https://github.com/rancher-cert-exporter/rancher-cert-exporter",
		"org.opencontainers.image.licenses": "Apache-2.0",
	} {
		if got := strings.TrimSpace(docker(t, "image", "inspect", "-f", `{{index .Config.Labels "`+label+`"}}`, image)); got != want {
			t.Errorf("label %s = %q, want %q", label, got, want)
		}
	}
}
