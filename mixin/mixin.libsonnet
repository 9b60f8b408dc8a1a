// The rancher-cert-exporter monitoring mixin: alert rules, Alertmanager inhibition and the
// Grafana dashboard, tuned through _config (config.libsonnet).
(import 'config.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'dashboard.libsonnet')
