// Package mixin holds the monitoring mixin; its test renders it and keeps the committed rule
// files and dashboard equal to what it renders.
package mixin

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "write the rendered files")

// render evaluates render.jsonnet, optionally with extra jsonnet applied to the mixin's _config,
// into file name → content.
func render(t *testing.T, snippet string) map[string]string {
	t.Helper()
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{"."}})
	var out string
	var err error
	if snippet == "" {
		out, err = vm.EvaluateFile("render.jsonnet")
	} else {
		out, err = vm.EvaluateAnonymousSnippet("custom.jsonnet", snippet)
	}
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	if err := json.Unmarshal([]byte(out), &files); err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRenderedFilesAreCommitted(t *testing.T) {
	files := render(t, "")
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != 5 {
		t.Fatalf("rendered %v", names)
	}
	for _, name := range names {
		path := filepath.Join("..", name)
		if *update {
			if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(committed) != files[name] {
			t.Errorf("%s differs from what the mixin renders: run go test ./mixin -update", name)
		}
	}
}

// TestConfigTunesEverything renders with another selector and warning threshold: every rule
// and dashboard query carries the selector, and the thresholds move.
func TestConfigTunesEverything(t *testing.T) {
	files := render(t, `
local mixin = (import 'mixin.libsonnet') + { _config+:: { selector: 'job="certs"', thresholds+: { warningDays: 60 } } };
{ rules: std.manifestJson(mixin.prometheusAlerts), dashboard: std.manifestJson(mixin.grafanaDashboards['rancher-cert-exporter.json']) }`)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal([]byte(files["rules"]), &rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Groups[0].Rules {
		if !strings.Contains(r.Expr, `job="certs"`) || strings.Contains(r.Expr, `job="rancher-cert-exporter"`) {
			t.Errorf("%s: %s", r.Alert, r.Expr)
		}
		if r.Alert == "K3sCertificateExpiringSoon" && (!strings.Contains(r.Expr, "<= 60 * 86400") || !strings.Contains(r.Annotations["summary"], "60 days")) {
			t.Errorf("warning threshold did not move: %s / %s", r.Expr, r.Annotations["summary"])
		}
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(files["dashboard"]), &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			if !strings.Contains(target.Expr, `job="certs"`) {
				t.Errorf("dashboard query without the selector: %s", target.Expr)
			}
		}
	}
	if !strings.Contains(files["dashboard"], `"value": 60`) {
		t.Error("the dashboard's colours do not follow the warning threshold")
	}
}
