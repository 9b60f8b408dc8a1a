// Settings of the rancher-cert-exporter mixin. Override any in your own jsonnet:
//   (import 'mixin/mixin.libsonnet') + { _config+:: { selector: 'job="certs"', thresholds+: { warningDays: 60 } } }
{
  _config+:: {
    // Selects the exporter's series in every rule and dashboard query; '' selects all.
    selector: 'job="rancher-cert-exporter"',
    // Days: warn and page on k3s and cluster certificates; the trap is the UI certificate
    // outliving the earliest k3s certificate by more than gapDays; the UI certificate warns at
    // uiWarningDays (Rancher renews it at 7); the CA of the cacerts setting warns at
    // caWarningDays, and a change of its checksum is reported for caChangeDays. The exporter's
    // check and status page use the same.
    thresholds: import '../thresholds/thresholds.json',
    // Where each alert's runbook_url points; the alert's name, lower case, is the anchor.
    runbookURL: 'https://github.com/rancher-cert-exporter/rancher-cert-exporter/blob/main/alerts/runbook.md',
    // Labels Alertmanager's inhibition compares: a critical alert mutes the warning of the
    // same certificate.
    inhibitEqual: ['instance', 'container', 'path'],
    // The dashboard.
    dashboardUID: 'rancher-cert-exporter',
    dashboardTitle: 'Rancher certificates',
  },
}
