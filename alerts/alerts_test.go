// Package alerts holds the Prometheus rules, rendered from mixin/; its test runs promtool on
// them and amtool on the inhibition rules.
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
)

const (
	rulesFile    = "rancher-cert-exporter.rules.yml"
	manifestFile = "rancher-cert-exporter.prometheusrule.yaml"
	inhibitFile  = "alertmanager-inhibit.yml"
)

func run(t *testing.T, tool, pkg string, args ...string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, tool, pkg), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", tool, strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, "promtool", "prometheus", "check", "rules", rulesFile)
}

func TestPromtoolUnitTests(t *testing.T) {
	tests, _ := filepath.Glob("*_test.yml")
	if len(tests) < 4 {
		t.Fatalf("found %v, want the timeline, boundary, release and secret tests", tests)
	}
	run(t, "promtool", "prometheus", append([]string{"test", "rules"}, tests...)...)
}

// TestPrometheusRuleSpecIsTheRuleFile: the manifest for prometheus-operator carries the rule
// file's groups, which promtool accepts.
func TestPrometheusRuleSpecIsTheRuleFile(t *testing.T) {
	var manifest struct {
		Kind string
		Spec struct{ Groups []any }
	}
	var plain struct{ Groups []any }
	readYAML(t, manifestFile, &manifest)
	readYAML(t, rulesFile, &plain)
	if manifest.Kind != "PrometheusRule" || len(plain.Groups) == 0 || !reflect.DeepEqual(manifest.Spec.Groups, plain.Groups) {
		t.Fatal("the PrometheusRule's spec.groups differ from the rule file's groups")
	}
	spec, _ := yaml.Marshal(manifest.Spec)
	file := filepath.Join(t.TempDir(), "spec.yml")
	os.WriteFile(file, spec, 0o644)
	run(t, "promtool", "prometheus", "check", "rules", file)
}

// TestInhibitionRulesLoad: the shipped inhibition rules, in the README's Alertmanager example,
// are a configuration Alertmanager accepts.
func TestInhibitionRulesLoad(t *testing.T) {
	var inhibit map[string]any
	readYAML(t, inhibitFile, &inhibit)
	config := map[string]any{
		"route":     map[string]any{"receiver": "default"},
		"receivers": []any{map[string]any{"name": "default"}},
	}
	config["inhibit_rules"] = inhibit["inhibit_rules"]
	data, _ := yaml.Marshal(config)
	file := filepath.Join(t.TempDir(), "alertmanager.yml")
	os.WriteFile(file, data, 0o644)
	run(t, "amtool", "prometheus-alertmanager", "check-config", file)
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
