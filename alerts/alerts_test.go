// Package alerts holds the Prometheus rules; its test runs promtool on them and keeps the
// PrometheusRule manifest identical to the rule file.
package alerts

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the generated PrometheusRule manifest")

const (
	rulesFile    = "rancher-cert-exporter.rules.yml"
	manifestFile = "rancher-cert-exporter.prometheusrule.yaml"
)

func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "promtool", "prometheus"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, "check", "rules", rulesFile)
}

func TestPromtoolUnitTests(t *testing.T) {
	tests, _ := filepath.Glob("*_test.yml")
	if len(tests) < 2 {
		t.Fatalf("found %v, want the timeline and boundary tests", tests)
	}
	promtool(t, append([]string{"test", "rules"}, tests...)...)
}

// prometheusRule wraps the rule file, comments and all, as a prometheus-operator resource for
// Rancher Monitoring, whose Prometheus selects every PrometheusRule.
func prometheusRule(rules []byte) []byte {
	var b strings.Builder
	b.WriteString("# Generated from " + rulesFile + " by `go test ./alerts -update`; do not edit.\n")
	b.WriteString("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n")
	b.WriteString("  name: rancher-cert-exporter\n  namespace: cattle-monitoring-system\n")
	b.WriteString("  labels:\n    app.kubernetes.io/name: rancher-cert-exporter\nspec:\n")
	for _, line := range strings.SplitAfter(string(rules), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(line)
			continue
		}
		b.WriteString("  " + line)
	}
	return []byte(b.String())
}

func TestPrometheusRuleMatchesRuleFile(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	want := prometheusRule(rules)
	if *update {
		if err := os.WriteFile(manifestFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is not generated from %s: run go test ./alerts -update", manifestFile, rulesFile)
	}
	// The spec must be exactly the rule file: promtool checks the extracted spec too.
	spec := filepath.Join(t.TempDir(), "spec.yml")
	var lines []string
	inSpec := false
	for _, line := range strings.Split(string(got), "\n") {
		if line == "spec:" {
			inSpec = true
			continue
		}
		if inSpec {
			lines = append(lines, strings.TrimPrefix(line, "  "))
		}
	}
	if strings.Join(lines, "\n") != string(rules) {
		t.Fatal("the manifest's spec differs from the rule file")
	}
	var manifest struct {
		Kind string
		Spec struct{ Groups []any }
	}
	var plain struct{ Groups []any }
	if err := yaml.Unmarshal(got, &manifest); err != nil {
		t.Fatalf("%s is not YAML: %v", manifestFile, err)
	}
	yaml.Unmarshal(rules, &plain)
	if manifest.Kind != "PrometheusRule" || !reflect.DeepEqual(manifest.Spec.Groups, plain.Groups) || len(plain.Groups) == 0 {
		t.Fatal("the manifest's spec.groups differ from the rule file's groups")
	}
	os.WriteFile(spec, []byte(strings.Join(lines, "\n")), 0o644)
	promtool(t, "check", "rules", spec)
}
