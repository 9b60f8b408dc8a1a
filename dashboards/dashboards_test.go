// Package dashboards holds the Grafana dashboard, rendered from mixin/; its test checks that
// the sidecar ConfigMap carries it byte for byte. The end-to-end test in test/e2e runs every
// panel query against a real Prometheus.
package dashboards

import (
	"encoding/json"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigMapCarriesTheDashboard(t *testing.T) {
	dashboard, err := os.ReadFile("rancher-cert-exporter.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(dashboard) {
		t.Fatal("the dashboard is not JSON")
	}
	data, err := os.ReadFile("rancher-cert-exporter.configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Metadata struct{ Labels map[string]string }
		Data     map[string]string
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["rancher-cert-exporter.json"] != string(dashboard) || cm.Metadata.Labels["grafana_dashboard"] != "1" {
		t.Fatal("the ConfigMap does not carry the dashboard byte for byte")
	}
}
