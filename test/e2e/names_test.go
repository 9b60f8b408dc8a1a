package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// promAlert is an alert as Prometheus's API has it, with its annotations.
type promAlert struct {
	Labels      map[string]string
	Annotations map[string]string
	State       string
}

// firingAlerts lists the alerts Prometheus has firing.
func firingAlerts(t *testing.T, promURL string) []promAlert {
	t.Helper()
	var out struct{ Alerts []promAlert }
	promGet(t, promURL+"/api/v1/alerts", &out)
	var firing []promAlert
	for _, a := range out.Alerts {
		if a.State == "firing" {
			firing = append(firing, a)
		}
	}
	return firing
}

// TestUpgradeInto2140LeavesTheInternalClusterIPUncovered reproduces rancher/rancher#54407: a 2.13
// server upgraded to 2.14.0 gets the rancher-internal Service, whose ClusterIP the internal
// listener's certificate, issued by 2.13, does not cover — and 2.14.0 keeps it. The exporter
// shows the missing address (as kubectl reads it from the Service) in the metric, a real
// Prometheus fires RancherCertificateMissingName naming it, the page and check say it. The
// upgrade to 2.14.4 (the fix, #54427) re-issues the certificate: covered, the alert resolves.
func TestUpgradeInto2140LeavesTheInternalClusterIPUncovered(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V2138, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	sim = engine.UpgradeSim(t, sim, harness.SimOptions{Profile: harness.V2140, CrashLoop: true})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "-n", "cattle-system",
		"get", "service", "rancher-internal", "-o", "jsonpath={.spec.clusterIP}").CombinedOutput()
	ip := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(ip, "10.43.") {
		t.Fatalf("kubectl get service rancher-internal: %v %s", err, out)
	}

	e := startExporter(t, nil, "--rancher.container", sim.Name)
	prom := prometheusOn(t, e)
	internal := map[string]string{"container": sim.Name, "source": "secret", "path": "cattle-system/tls-rancher-internal/tls.crt"}
	mfs := e.scrape(t)
	if v := value(t, mfs, "rancher_cert_exporter_certificate_names_covered", internal); v != 0 {
		t.Fatalf("names_covered of tls-rancher-internal on 2.14.0 after the upgrade = %v", v)
	}
	missing := series(mfs, "rancher_cert_exporter_certificate_name_missing", internal)
	if len(missing) != 1 || missing[0].labels["name"] != ip {
		t.Fatalf("name_missing %v, want the ClusterIP %s kubectl reads", missing, ip)
	}
	for _, n := range series(mfs, "rancher_cert_exporter_certificate_names_covered", map[string]string{"container": sim.Name}) {
		if n.labels["path"] != internal["path"] && n.value != 1 {
			t.Errorf("%s does not cover its names on a healthy 2.14.0", n.labels["path"])
		}
	}
	waitAlert(t, prom, "RancherCertificateMissingName", sim.Name, true, 30*time.Second)
	var said bool
	for _, a := range firingAlerts(t, prom) {
		said = said || a.Labels["alertname"] == "RancherCertificateMissingName" && a.Labels["name"] == ip && strings.Contains(a.Annotations["description"], "does not cover "+ip)
	}
	if !said {
		t.Errorf("RancherCertificateMissingName does not name %s: %+v", ip, firingAlerts(t, prom))
	}
	if page := e.page(t); !strings.Contains(page, "does not cover "+ip) {
		t.Error("the status page does not say the internal certificate lacks the ClusterIP")
	}
	if out, code := runCheck(t, "--rancher.container", sim.Name); code != 1 || !strings.Contains(out, "names of cattle-system/tls-rancher-internal/tls.crt") || !strings.Contains(out, "does not cover "+ip) {
		t.Errorf("check: exit %d\n%s", code, out)
	}

	// 2.14.4 deletes the secret that lacks the address, and the listener issues it again.
	fixed := engine.UpgradeSim(t, sim, harness.SimOptions{Profile: harness.V2144, CrashLoop: true})
	engine.WaitLog(t, fixed.ID, "does not include ClusterIP "+ip+", deleting to force regeneration", time.Minute)
	engine.WaitLog(t, fixed.ID, simReady, time.Minute)
	e = startExporter(t, nil, "--rancher.container", fixed.Name)
	internal["container"] = fixed.Name
	if v := value(t, e.scrape(t), "rancher_cert_exporter_certificate_names_covered", internal); v != 1 {
		t.Fatalf("names_covered of tls-rancher-internal after the upgrade to 2.14.4 = %v", v)
	}
	if out, code := runCheck(t, "--rancher.container", fixed.Name); code != 0 {
		t.Errorf("check on the fixed server: exit %d\n%s", code, out)
	}
}
