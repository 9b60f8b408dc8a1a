// Package dashboards holds the Grafana dashboard; its test keeps the sidecar ConfigMap
// identical to the JSON. The end-to-end test in test/e2e runs every panel query.
package dashboards

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the generated ConfigMap")

const (
	dashboardFile = "rancher-cert-exporter.json"
	configMapFile = "rancher-cert-exporter.configmap.yaml"
)

// configMap wraps the dashboard for the Grafana sidecar (Rancher Monitoring watches the
// cattle-dashboards namespace for the grafana_dashboard label).
func configMap(dashboard []byte) []byte {
	var b strings.Builder
	b.WriteString("# Generated from " + dashboardFile + " by `go test ./dashboards -update`; do not edit.\n")
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rancher-cert-exporter-dashboard\n")
	b.WriteString("  namespace: cattle-dashboards\n  labels:\n    grafana_dashboard: \"1\"\n")
	b.WriteString("data:\n  " + dashboardFile + ": |\n")
	for _, line := range strings.Split(strings.TrimRight(string(dashboard), "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return []byte(b.String())
}

func TestConfigMapMatchesDashboard(t *testing.T) {
	dashboard, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dashboard) {
		t.Fatalf("%s is not JSON", dashboardFile)
	}
	want := configMap(dashboard)
	if *update {
		os.WriteFile(configMapFile, want, 0o644)
	}
	got, err := os.ReadFile(configMapFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is not generated from %s: run go test ./dashboards -update", configMapFile, dashboardFile)
	}
	var cm struct {
		Metadata struct{ Labels map[string]string }
		Data     map[string]string
	}
	if err := yaml.Unmarshal(got, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data[dashboardFile] != string(dashboard) || cm.Metadata.Labels["grafana_dashboard"] != "1" {
		t.Fatal("the ConfigMap does not carry the dashboard byte for byte")
	}
}
