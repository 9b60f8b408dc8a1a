package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/test/harness"
)

// startDaemon runs a monitoring daemon until the test ends and waits for its ready endpoint.
func startDaemon(t *testing.T, ready string, name string, args ...string) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(testenv.Tool(t, name, "prometheus prometheus-alertmanager"), args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = dieWithTest
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v (apt-get install prometheus prometheus-alertmanager)", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, log.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not ready at %s after 30 s", name, ready)
		}
	}
}

// webhook collects what Alertmanager delivers.
type webhook struct {
	mu     sync.Mutex
	alerts []deliveredAlert
}

type deliveredAlert struct {
	Status      string
	Labels      map[string]string
	Annotations map[string]string
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var msg struct{ Alerts []deliveredAlert }
	if err := json.NewDecoder(r.Body).Decode(&msg); err == nil {
		w.mu.Lock()
		w.alerts = append(w.alerts, msg.Alerts...)
		w.mu.Unlock()
	}
}

func (w *webhook) resolved(alertname, container string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if a.Labels["alertname"] == alertname && a.Labels["container"] == container && a.Status == "resolved" {
			return true
		}
	}
	return false
}

// findPath finds a firing alert of one certificate.
func (w *webhook) findPath(alertname, container, path string) *deliveredAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if a.Labels["alertname"] == alertname && a.Labels["container"] == container && a.Labels["path"] == path && a.Status == "firing" {
			return &a
		}
	}
	return nil
}

// waitFor waits up to 60s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
	}
}

func (w *webhook) find(alertname, container string) *deliveredAlert {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if a.Labels["alertname"] == alertname && a.Labels["container"] == container && a.Status == "firing" {
			return &a
		}
	}
	return nil
}

// testRules is the shipped rule file with every for: set to 0s, so the end-to-end run does
// not wait 15 minutes; the durations themselves are proven by the promtool tests.
func testRules(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "alerts", "rancher-cert-exporter.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules := regexp.MustCompile(`(?m)^(\s+for: ).*$`).ReplaceAllString(string(data), "${1}0s")
	if strings.Count(rules, "for: 0s") != strings.Count(string(data), "for: ") {
		t.Fatal("could not rewrite every for:")
	}
	file := filepath.Join(dir, "rules.yml")
	os.WriteFile(file, []byte(rules), 0o644)
	return file
}

func TestAlertDeliveredAndDashboardQueriesAnswer(t *testing.T) {
	t.Parallel()
	sim := engine.StartSim(t, harness.SimOptions{LeafDays: 4, UIDays: 365})             // the gap state
	v257 := engine.StartSim(t, harness.SimOptions{Profile: harness.V257, LeafDays: 20}) // its webhook certificate expires in 20 days
	engine.WaitLog(t, sim.ID, simReady, 30*time.Second)
	engine.WaitLog(t, v257.ID, simReady, 60*time.Second)
	clusterCtl(t, v257, "add", "--id", "c-dash1", "--name", "dash", "--rke1", "--cert", "kube-apiserver=100")                                                     // the dashboard's downstream table
	exp := startRotationExporter(t, nil, "--rancher.container", sim.Name, "--rancher.container", v257.Name, "--rotation.auto=plan", "--rotation.auto-before=30d") // v257 stays due: the dashboard's next automatic rotation
	instance := strings.TrimPrefix(exp.url, "http://")

	// Two Alertmanagers get the same alerts: one with the shipped inhibition rules (its
	// deliveries go to hook), one without (to bare).
	hook, bare := &webhook{}, &webhook{}
	dir := t.TempDir()
	amPort, bareAMPort, promPort := freePort(t), freePort(t), freePort(t)
	inhibit, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "alerts", "alertmanager-inhibit.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, am := range []struct {
		name    string
		port    int
		hook    *webhook
		inhibit []byte
	}{{"inhibiting", amPort, hook, inhibit}, {"bare", bareAMPort, bare, nil}} {
		receiver := httptest.NewServer(am.hook)
		defer receiver.Close()
		config := fmt.Sprintf(`route:
  receiver: test
  group_by: [alertname, container, path]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s
`, receiver.URL) + string(am.inhibit)
		file := filepath.Join(dir, am.name+".yml")
		os.WriteFile(file, []byte(config), 0o644)
		startDaemon(t, fmt.Sprintf("http://127.0.0.1:%d/-/ready", am.port), "prometheus-alertmanager",
			"--config.file="+file, "--storage.path="+filepath.Join(dir, am.name),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", am.port), "--cluster.listen-address=")
	}

	promConfig := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:%d", "127.0.0.1:%d"]
scrape_configs:
  - job_name: rancher-cert-exporter
    static_configs:
      - targets: [%q]
`, testRules(t, dir), amPort, bareAMPort, instance)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(promConfig), 0o644)
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	startDaemon(t, promURL+"/-/ready", "prometheus",
		"--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))

	var got *deliveredAlert
	deadline := time.Now().Add(90 * time.Second)
	for got == nil && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		got = hook.find("RancherK3sCertificatesNotRenewed", sim.Name)
	}
	if got == nil {
		t.Fatalf("Alertmanager delivered no RancherK3sCertificatesNotRenewed for %s; got %+v", sim.Name, hook.alerts)
	}
	t.Logf("delivered: %+v", *got)
	if got.Labels["severity"] != "critical" || got.Labels["instance"] != instance {
		t.Errorf("labels %v", got.Labels)
	}
	desc := got.Annotations["description"]
	if !regexp.MustCompile(`^/var/lib/rancher/k3s/\S+ in container ` + sim.Name + ` on ` + regexp.QuoteMeta(instance) + ` expires in 3d 23h \d+m \d+s, while the UI`).MatchString(desc) {
		t.Errorf("description %q", desc)
	}
	if !strings.HasSuffix(got.Annotations["runbook_url"], "alerts/runbook.md#rancherk3scertificatesnotrenewed") || got.Annotations["summary"] == "" {
		t.Errorf("annotations %v", got.Annotations)
	}
	var secretAlert *deliveredAlert
	for deadline := time.Now().Add(30 * time.Second); secretAlert == nil && time.Now().Before(deadline); time.Sleep(time.Second) {
		hook.mu.Lock()
		for _, a := range hook.alerts {
			if a.Labels["alertname"] == "RancherClusterCertificateExpiringSoon" && a.Labels["path"] == "cattle-system/cattle-webhook-tls/tls.crt" {
				secretAlert = &a
			}
		}
		hook.mu.Unlock()
	}
	if secretAlert == nil || secretAlert.Labels["container"] != v257.Name || secretAlert.Labels["source"] != "secret" ||
		!strings.Contains(secretAlert.Annotations["description"], "rancher-cert-exporter rotate --rancher.container "+v257.Name+" --secret cattle-system/cattle-webhook-tls") {
		t.Errorf("the webhook certificate's alert was not delivered as expected: %+v", secretAlert)
	}
	// At 4 days left both the warning and the critical alert fire for each leaf; with the
	// shipped inhibition only the critical one is delivered, without it both are.
	leaf := "/var/lib/rancher/k3s/server/tls/client-admin.crt"
	waitFor(t, "the critical alert from the bare Alertmanager", func() bool { return bare.findPath("K3sCertificateExpiringCritical", sim.Name, leaf) != nil })
	waitFor(t, "the warning from the bare Alertmanager", func() bool { return bare.findPath("K3sCertificateExpiringSoon", sim.Name, leaf) != nil })
	waitFor(t, "the critical alert from the inhibiting Alertmanager", func() bool { return hook.findPath("K3sCertificateExpiringCritical", sim.Name, leaf) != nil })
	time.Sleep(5 * time.Second) // group_interval 1s: a warning would have come by now
	if a := hook.findPath("K3sCertificateExpiringSoon", sim.Name, leaf); a != nil {
		t.Errorf("the inhibiting Alertmanager delivered the warning beside the critical alert: %+v", a)
	}
	if hook.find("K3sCertificateExpiringCritical", sim.Name) == nil {
		t.Error("K3sCertificateExpiringCritical was not delivered for leaves 4 days from expiry")
	}
	if a := hook.find("RancherUICertificateExpiringSoon", sim.Name); a != nil {
		t.Errorf("UI alert fired for a renewed UI certificate: %+v", a)
	}

	// Rotating by one POST closes the gap: the alert resolves.
	if rep := exp.rotate(t, sim.Name, ""); rep.State != "succeeded" {
		t.Fatalf("rotation: %+v", rep)
	}
	deadline = time.Now().Add(90 * time.Second)
	for !hook.resolved("RancherK3sCertificatesNotRenewed", sim.Name) {
		if time.Now().After(deadline) {
			t.Fatal("RancherK3sCertificatesNotRenewed did not resolve after the rotation")
		}
		time.Sleep(time.Second)
	}

	// Grafana puts a chosen value into =~ as a regex, escaped for a PromQL string.
	promRegex := func(v string) string { return strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`) }
	// Both containers selected, as Grafana's multi-value variable writes them: v257 is the one
	// with an automatic rotation planned.
	checkDashboard(t, promURL, map[string]string{"instance": promRegex(instance), "container": "(" + promRegex(sim.Name) + "|" + promRegex(v257.Name) + ")"})
}

// dashboard is the part of the Grafana JSON the checks read.
type dashboard struct {
	UID           string
	SchemaVersion int
	Templating    struct {
		List []struct {
			Name, Type string
			Query      json.RawMessage
			Datasource json.RawMessage
		}
	}
	Panels []struct {
		ID          int
		Title, Type string
		Datasource  struct{ UID string }
		FieldConfig struct {
			Defaults struct{ Unit string }
		}
		Targets []struct {
			Expr       string
			Datasource struct{ UID string }
		}
	}
}

func checkDashboard(t *testing.T, promURL string, vars map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "dashboards", "rancher-cert-exporter.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID != "rancher-cert-exporter" || d.SchemaVersion < 39 {
		t.Errorf("uid %q schemaVersion %d", d.UID, d.SchemaVersion)
	}
	names := map[string]bool{}
	for _, v := range d.Templating.List {
		names[v.Name] = true
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		json.Unmarshal(v.Query, &q)
		if !strings.Contains(string(v.Datasource), "${datasource}") {
			t.Errorf("variable %s does not use the datasource variable", v.Name)
		}
		m := regexp.MustCompile(`^label_values\((.+), (\w+)\)$`).FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: unexpected query %q", v.Name, q.Query)
			continue
		}
		var values []string
		promGet(t, promURL+"/api/v1/label/"+m[2]+"/values?match[]="+url.QueryEscape(substitute(m[1], vars)), &values)
		if len(values) == 0 {
			t.Errorf("variable %s: %s returns no values", v.Name, q.Query)
		}
	}
	for _, want := range []string{"datasource", "instance", "container"} {
		if !names[want] {
			t.Errorf("no %s variable", want)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q", p.Title, p.Datasource.UID)
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q has no unit", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			if target.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: target datasource %q", p.Title, target.Datasource.UID)
			}
			expr := substitute(target.Expr, vars)
			var res struct{ Result []json.RawMessage }
			for try := 0; try < 10 && len(res.Result) == 0; try++ { // the last scrape may be a second away
				if try > 0 {
					time.Sleep(time.Second)
				}
				promGet(t, promURL+"/api/v1/query?query="+url.QueryEscape(expr), &res)
			}
			if len(res.Result) == 0 {
				t.Errorf("panel %q: %s returns no data", p.Title, expr)
			}
		}
	}
}

// substitute replaces Grafana variables as Grafana would for the chosen values.
func substitute(expr string, vars map[string]string) string {
	for k, v := range vars {
		expr = strings.ReplaceAll(expr, "$"+k, v)
	}
	return strings.ReplaceAll(expr, "$__rate_interval", "1m")
}

func promGet(t *testing.T, u string, data any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string
		Data   json.RawMessage
		Error  string
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("%s: %s %s", u, env.Error, body)
	}
	json.Unmarshal(env.Data, data)
}
