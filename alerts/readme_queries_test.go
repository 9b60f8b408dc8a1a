package alerts

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readmeQueries returns the README's "Useful queries", each with the comment above it.
func readmeQueries(t *testing.T) (comments, queries []string) {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "Useful queries:\n\n```promql\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal(`README.md has no "Useful queries:" PromQL block`)
	}
	inComment := false
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if strings.HasPrefix(line, "#") {
			if !inComment {
				comments = append(comments, "")
				queries = append(queries, "")
			}
			comments[len(comments)-1] += line + "\n"
		} else {
			queries[len(queries)-1] += line + "\n"
		}
		inComment = strings.HasPrefix(line, "#")
	}
	return comments, queries
}

// TestREADMEQueriesLeaveUnusedFilesOut runs the README's queries on Prometheus's engine
// (promtool; time() is 60 at the evaluation) for a server upgraded into a release that no longer uses one of its files: the
// leftover expires in 5 days, the leaves in use in 100, the CA in ten years, the UI certificate
// in 300 days. Files nothing uses must not be the "soonest leaf" nor hide the trap.
func TestREADMEQueriesLeaveUnusedFilesOut(t *testing.T) {
	const day = 86400
	comments, queries := readmeQueries(t)
	want := []float64{100, (300 - 100) * day} // days left on the soonest leaf; UI minus k3s, in seconds
	if len(queries) != len(want) {
		t.Fatalf("README has %d useful queries, the test knows %d:\n%s", len(queries), len(want), strings.Join(comments, ""))
	}
	const tls = "/var/lib/rancher/k3s/server/tls/"
	series := func(metric, labels string, value int) map[string]string {
		return map[string]string{
			"series": metric + `{job="rancher-cert-exporter", instance="h", container="r214", ` + labels + `}`,
			"values": strconv.Itoa(value) + "x5",
		}
	}
	var tests []map[string]any
	for i, q := range queries {
		tests = append(tests, map[string]any{"expr": q, "eval_time": "1m", "exp_samples": []map[string]any{{"labels": `{container="r214"}`, "value": want[i]}}})
	}
	file := map[string]any{
		"evaluation_interval": "1m",
		"tests": []map[string]any{{
			"interval": "1m",
			"input_series": []map[string]string{
				series("cert_not_after_seconds", `source="k3s", ca="false", path="`+tls+`client-kube-proxy.crt"`, 60+5*day),
				series("rancher_cert_exporter_certificate_unused", `source="k3s", path="`+tls+`client-kube-proxy.crt"`, 1),
				series("cert_not_after_seconds", `source="k3s", ca="false", path="`+tls+`client-admin.crt"`, 60+100*day),
				series("cert_not_after_seconds", `source="k3s", ca="false", path="`+tls+`serving-kube-apiserver.crt"`, 60+200*day),
				series("cert_not_after_seconds", `source="k3s", ca="true", path="`+tls+`server-ca.crt"`, 60+3650*day),
				series("cert_not_after_seconds", `source="ui", ca="false", path="https://127.0.0.1:443"`, 60+300*day),
			},
			"promql_expr_test": tests,
		}},
	}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "readme_test.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "promtool", "prometheus", "test", "rules", path)
}
