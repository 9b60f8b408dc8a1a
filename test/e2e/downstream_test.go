package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// clusterCtl changes what a simulated server manages, as provisioning and the downstream agents
// would: `ranchersim cluster ...` in the container.
func clusterCtl(t *testing.T, sim *harness.Sim, args ...string) {
	t.Helper()
	docker(t, append([]string{"exec", sim.Name, "ranchersim", "cluster"}, args...)...)
}

// kubectlClusters is what a real kubectl reads of the server's clusters: each certificate's
// expiry as stored, and each cluster's service account token (a credential).
func kubectlClusters(t *testing.T, sim *harness.Sim) (expiry map[string]string, tokens []string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "kubectl", "kubernetes-client"), "--kubeconfig", kubeconfig(t, sim), "get",
		"clusters.management.cattle.io", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl get clusters.management.cattle.io: %v", err)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				ServiceAccountToken    string
				CertificatesExpiration map[string]struct{ ExpirationDate string }
			}
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	expiry = map[string]string{}
	for _, c := range list.Items {
		for name, e := range c.Status.CertificatesExpiration {
			expiry[c.Metadata.Name+"/"+name] = e.ExpirationDate
		}
		if c.Status.ServiceAccountToken != "" {
			tokens = append(tokens, c.Status.ServiceAccountToken)
		}
	}
	return expiry, tokens
}

// TestDownstreamClusters: a 2.12 server managing RKE1 clusters — healthy, 20 days, 5 days and
// past a certificate's expiry — and an imported one whose agent goes away. The exporter reports
// each certificate exact to the second as kubectl reads it, each agent, each cluster's kind and
// the RKE1 count; a real Prometheus fires each alert as it should, and the correlation alert only
// once the cacerts checksum the agents pinned changes; the page and check say the same; no
// credential of the objects reaches the log or the scrape.
func TestDownstreamClusters(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V2123, CrashLoop: true, Env: []string{"SIM_CLUSTER_CHECK_INTERVAL=1s"}})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	clusterCtl(t, sim, "add", "--id", "c-fine1", "--name", "fine", "--rke1", "--pin", "current", "--cert", "kube-ca=3000", "--cert", "kube-apiserver=300", "--etcd", "10.0.0.5")
	clusterCtl(t, sim, "add", "--id", "c-soon1", "--name", "soon", "--rke1", "--pin", "current", "--cert", "kube-apiserver=20", "--cert", "kube-node=300")
	clusterCtl(t, sim, "add", "--id", "c-crit1", "--name", "crit", "--rke1", "--pin", "current", "--cert", "kube-scheduler=5")
	clusterCtl(t, sim, "add", "--id", "c-gone1", "--name", "gone", "--rke1", "--pin", "current", "--cert", "kube-node=-1")
	clusterCtl(t, sim, "add", "--id", "c-edge1", "--name", "edge", "--driver", "imported", "--provider", "k3s", "--k8s", "v1.30.4+k3s1", "--pin", "current")
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.refresh-interval", "2s")
	prom := prometheusOn(t, e)

	expiry, tokens := kubectlClusters(t, sim)
	if len(expiry) != 7 || len(tokens) != 5 {
		t.Fatalf("kubectl reads %d certificates and %d tokens, want 7 and 5", len(expiry), len(tokens))
	}
	mfs := e.scrape(t)
	got := series(mfs, "cert_not_after_seconds", map[string]string{"container": sim.Name, "source": "downstream"})
	if len(got) != len(expiry) {
		t.Errorf("%d downstream series, kubectl reads %d: %v", len(got), len(expiry), got)
	}
	for _, s := range got {
		want, err := rancher.ParseExpirationDate(expiry[s.labels["path"]])
		if err != nil || int64(s.value) != want.Unix() || s.labels["ca"] != map[bool]string{true: "true", false: "false"}[strings.HasSuffix(s.labels["path"], "/kube-ca")] {
			t.Errorf("%s: %v (ca %s), kubectl reads %q", s.labels["path"], s.value, s.labels["ca"], expiry[s.labels["path"]])
		}
	}
	if s := series(mfs, "cert_not_before_seconds", map[string]string{"source": "downstream"}); len(s) != 0 {
		t.Errorf("a not-before for a downstream certificate, which Rancher does not report: %v", s)
	}
	info := series(mfs, "rancher_cert_exporter_downstream_cluster_info", map[string]string{"container": sim.Name, "cluster": "c-edge1"})
	if len(info) != 1 || info[0].labels["display_name"] != "edge" || info[0].labels["driver"] != "imported" || info[0].labels["provider"] != "k3s" || info[0].labels["kubernetes_version"] != "v1.30.4+k3s1" {
		t.Errorf("cluster info %v", info)
	}
	if s := series(mfs, "rancher_cert_exporter_downstream_cluster_info", map[string]string{"cluster": "local"}); len(s) != 0 {
		t.Errorf("the server's own cluster is reported downstream: %v", s)
	}
	if v := value(t, mfs, "rancher_cert_exporter_rke1_clusters", map[string]string{"container": sim.Name}); v != 4 {
		t.Errorf("rke1_clusters = %v, want 4", v)
	}

	clusterCtl(t, sim, "agent", "--id", "c-edge1", "--online=false")
	for _, a := range []struct {
		name, cluster string
	}{{"RancherDownstreamCertificateExpiringSoon", "c-soon1"}, {"RancherDownstreamCertificateExpiringCritical", "c-crit1"},
		{"RancherDownstreamCertificateExpired", "c-gone1"}, {"RancherDownstreamClusterDisconnected", "c-edge1"}} {
		waitAlertFor(t, prom, a.name, "cluster", a.cluster, true, 30*time.Second)
	}
	waitAlertFor(t, prom, "RancherDownstreamCertificateExpiringSoon", "cluster", "c-fine1", false, time.Second)
	waitAlert(t, prom, "RancherAgentsLostAfterCertificateChange", sim.Name, false, time.Second)
	if v := value(t, e.scrape(t), "rancher_cert_exporter_downstream_cluster_connected", map[string]string{"container": sim.Name, "cluster": "c-edge1"}); v != 0 {
		t.Errorf("c-edge1 connected = %v after its agent went away", v)
	}
	page := e.page(t)
	for _, want := range []string{"<h4>Downstream clusters</h4>", "fine <span class=\"muted\">c-fine1", "not connected"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	out, code := runCheck(t, "--rancher.container", sim.Name)
	for _, want := range []string{"c-gone1/kube-node", "EXPIRED", "c-edge1", "the cluster agent of edge is not connected"} {
		if !strings.Contains(out, want) {
			t.Errorf("check lacks %q:\n%s", want, out)
		}
	}
	if code != 2 {
		t.Errorf("check exit %d, want 2 (an expired certificate)", code)
	}
	for _, token := range tokens {
		if strings.Contains(e.log.String(), token) || strings.Contains(scrapeText(t, e), token) || strings.Contains(page, token) || strings.Contains(out, token) {
			t.Fatal("a cluster's service account token reached the log, the scrape, the page or check")
		}
	}

	// The operator replaces the UI certificate and cacerts; the agents pinned the old checksum.
	clusterCtl(t, sim, "agent", "--id", "c-edge1", "--online=true")
	waitAlertFor(t, prom, "RancherDownstreamClusterDisconnected", "cluster", "c-edge1", false, 30*time.Second)
	ca := newOperatorCA(t, "operator-ca")
	chain, key := ca.serving(t, "rancher.local")
	mountCertificates(t, sim, map[string][]byte{"cert.pem": chain, "key.pem": key, "cacerts.pem": ca.pem()})
	restart(t, sim)
	waitCount(t, sim, simReady, 2)
	waitAlertFor(t, prom, "RancherAgentsLostAfterCertificateChange", "cluster", "c-fine1", true, 45*time.Second)
	if page := e.page(t); !strings.Contains(page, "Downstream clusters were lost after a certificate change.") {
		t.Error("the page has no banner for the clusters lost after the change")
	}
}

// TestDownstreamClustersOf23: a 2.3 server's cluster objects have no Connected condition and no
// provider; an old one keeps its dates in Go's time format; one date is no date at all. The agent
// is judged by Ready; the old dates read; the bad one is a read error with its own reason, and the
// rest of the cluster's certificates stay.
func TestDownstreamClustersOf23(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{Profile: harness.V23, Env: []string{"SIM_CLUSTER_CHECK_INTERVAL=1s"}})
	engine.WaitLog(t, sim.ID, simReady, time.Minute)
	clusterCtl(t, sim, "add", "--id", "c-old23", "--name", "legacy", "--rke1", "--old-dates", "--cert", "kube-apiserver=90", "--raw-date", "kube-node=next spring")
	clusterCtl(t, sim, "add", "--id", "c-off23", "--name", "offline", "--rke1", "--cert", "kube-apiserver=90")
	clusterCtl(t, sim, "agent", "--id", "c-off23", "--online=false")
	e := startExporter(t, nil, "--rancher.container", sim.Name, "--rancher.refresh-interval", "2s")
	expiry, _ := kubectlClusters(t, sim)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		m := e.scrape(t)
		if value(t, m, "rancher_cert_exporter_downstream_cluster_connected", map[string]string{"container": sim.Name, "cluster": "c-off23"}) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the offline 2.3 cluster is not reported disconnected (by Ready) within 20 s")
		}
	}
	m := e.scrape(t)
	if v := value(t, m, "rancher_cert_exporter_downstream_cluster_connected", map[string]string{"container": sim.Name, "cluster": "c-old23"}); v != 1 {
		t.Errorf("c-old23 connected = %v", v)
	}
	want, err := rancher.ParseExpirationDate(expiry["c-old23/kube-apiserver"])
	if err != nil || !strings.Contains(expiry["c-old23/kube-apiserver"], " UTC") {
		t.Fatalf("the old date %q: %v", expiry["c-old23/kube-apiserver"], err)
	}
	if v := value(t, m, "cert_not_after_seconds", map[string]string{"container": sim.Name, "path": "c-old23/kube-apiserver"}); int64(v) != want.Unix() {
		t.Errorf("c-old23/kube-apiserver %v, want %d", v, want.Unix())
	}
	if s := series(m, "cert_not_after_seconds", map[string]string{"path": "c-old23/kube-node"}); len(s) != 0 {
		t.Errorf("a series for a date that is no date: %v", s)
	}
	if v := value(t, m, "rancher_cert_exporter_read_errors_total", map[string]string{"source": "downstream", "reason": "invalid_date"}); v < 1 {
		t.Errorf("read_errors_total{invalid_date} = %v", v)
	}
	if info := series(m, "rancher_cert_exporter_downstream_cluster_info", map[string]string{"cluster": "c-old23"}); len(info) != 1 || info[0].labels["provider"] != "" {
		t.Errorf("2.3's cluster info %v, want no provider", info)
	}
	if page := e.page(t); !strings.Contains(page, "2 RKE1 cluster(s): Rancher 2.12 and later will not start") {
		t.Error("the page does not say that 2.12 will not start with the RKE1 clusters")
	}
}

// waitAlertFor waits until Prometheus has the alert firing (or not) for a label's value.
func waitAlertFor(t *testing.T, promURL, name, label, val string, firing bool, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(500 * time.Millisecond) {
		var alerts []struct{ Metric map[string]string }
		promGet(t, promURL+"/api/v1/query?query="+urlQuery(`ALERTS{alertstate="firing", alertname="`+name+`", `+label+`="`+val+`"}`), &struct {
			Result *[]struct{ Metric map[string]string }
		}{&alerts})
		if (len(alerts) > 0) == firing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s for %s=%s firing %v, want %v after %s", name, label, val, !firing, firing, timeout)
		}
	}
}
