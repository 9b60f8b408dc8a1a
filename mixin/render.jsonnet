// The files this repository ships, rendered from the mixin: `go test ./mixin -update` writes
// them, and `go test ./mixin` fails when one differs. Users who do not use jsonnet take the
// files as they are; users who do import mixin.libsonnet with their own _config.
local mixin = import 'mixin.libsonnet';
local generated = '# Generated from mixin/ by `go test ./mixin -update`; do not edit.\n';
local yaml(v) = std.manifestYamlDoc(v, indent_array_in_object=false, quote_keys=false) + '\n';
local dashboard = std.manifestJsonEx(mixin.grafanaDashboards['rancher-cert-exporter.json'], '  ') + '\n';

{
  'alerts/rancher-cert-exporter.rules.yml': generated + yaml(mixin.prometheusAlerts),
  'alerts/rancher-cert-exporter.prometheusrule.yaml': generated + yaml({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'rancher-cert-exporter',
      namespace: 'cattle-monitoring-system',
      labels: { 'app.kubernetes.io/name': 'rancher-cert-exporter' },
    },
    spec: mixin.prometheusAlerts,
  }),
  'alerts/alertmanager-inhibit.yml': generated + yaml(mixin.alertmanagerInhibitRules),
  'dashboards/rancher-cert-exporter.json': dashboard,
  // For the Grafana sidecar: Rancher Monitoring watches cattle-dashboards for the label.
  'dashboards/rancher-cert-exporter.configmap.yaml': generated + yaml({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'rancher-cert-exporter-dashboard',
      namespace: 'cattle-dashboards',
      labels: { grafana_dashboard: '1' },
    },
    data: { 'rancher-cert-exporter.json': dashboard },
  }),
}
