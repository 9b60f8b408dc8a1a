// The alert rules. Every expiry alert is evaluated per certificate file, so a ten-year CA never
// hides a one-year leaf; warnings keep firing inside the critical window (Alertmanager's
// inhibition mutes them there), so an alert never reads "resolved" while it got worse.
local lib = import 'lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local t = c.thresholds,
    local all = lib.selector(c, []),
    // k3s's own certificates: its files, and on 2.3 its 6443 listener's, kept in the cluster.
    local k3s = lib.selector(c, ['source=~"k3s|listener"']),
    // Files the container's release neither writes nor renews (left by an earlier release, or
    // by Rancher 2.0-2.2 in management-state/tls) are exported, never alerted on.
    local inUse(expr) = '(%s unless on (instance, container, path) rancher_cert_exporter_certificate_unused{%s})' % [expr, all],
    local k3sCerts = inUse('cert_not_after_seconds{%s}' % k3s),
    local secret = lib.selector(c, ['source="secret"']),
    // The certificates kept as secrets, but not those whose owner renews them and is still on
    // time: left to live above its renewal window, less the owner's grace.
    local secretCerts = '(cert_not_after_seconds{%(s)s} unless on (instance, container, source, path) ((cert_not_after_seconds{%(s)s} - time()) > on (instance, container, source, path) (rancher_cert_exporter_owner_renewal_window_seconds{%(s)s} - %(grace)d)))' % { s: secret, grace: t.ownerGraceHours * 3600 },
    local ui = lib.selector(c, ['source="ui"']),
    // The certificates of the cacerts setting (cacerts#1, #2, ...): judged is the one the UI chain
    // ends in; all of them while that is not known (the UI not read).
    local cacerts = '(cert_not_after_seconds{%s} unless on (instance, container, path) (rancher_cert_exporter_cacerts_anchor{%s} == 0))' % [lib.selector(c, ['source="setting"']), all],
    local up = lib.selector(c, []),
    // The certificates of the clusters the server manages (RKE1's certificatesExpiration), each
    // with the cluster its path starts with.
    local downstream = 'label_replace(cert_not_after_seconds{%s}, "cluster", "$1", "path", "([^/]+)/.+")' % lib.selector(c, ['source="downstream"']),
    local clusterName = '{{ with printf "rancher_cert_exporter_downstream_cluster_info{instance=%q, container=%q, cluster=%q}" $labels.instance $labels.container $labels.cluster | query }}{{ with first . }}{{ .Labels.display_name }} ({{ $labels.cluster }}){{ end }}{{ else }}{{ $labels.cluster }}{{ end }}',
    local rotateRKE1 = 'Rotate its certificates: in the Rancher UI, Cluster Management > the cluster > Rotate Certificates, or the API action rotateCertificates on the cluster (v3/clusters/{{ $labels.cluster }}?action=rotateCertificates).',
    local alert(name, severity, forTime, expr, summary, description) = {
      alert: name,
      expr: expr,
      'for': forTime,
      labels: { severity: severity },
      annotations: {
        summary: summary,
        description: description,
        runbook_url: c.runbookURL + '#' + std.asciiLower(name),
      },
    },
    local where = 'in container {{ $labels.container }} on {{ $labels.instance }}',
    local fileWhere = '{{ $labels.path }} ' + where,

    groups+: [{
      name: 'rancher-cert-exporter',
      rules: [
        alert(
          'K3sCertificateExpiringSoon', 'warning', '1h',
          '(%s - time()) <= %d * 86400' % [k3sCerts, t.warningDays],
          'A k3s certificate of a Rancher server expires within %d days.' % t.warningDays,
          fileWhere + ' ' + lib.when + '. A Rancher server does not start with an expired k3s certificate. ' + lib.advice('$labels.path', '$value'),
        ),
        alert(
          'K3sCertificateExpiringCritical', 'critical', '15m',
          '(%s - time()) <= %d * 86400' % [k3sCerts, t.criticalDays],
          'A k3s certificate of a Rancher server expires within %d days.' % t.criticalDays,
          fileWhere + ' ' + lib.when + '. ' + lib.advice('$labels.path', '$value'),
        ),
        alert(
          'K3sCertificateExpired', 'critical', '5m',
          '(time() - %s) >= 0' % k3sCerts,
          'A k3s certificate of a Rancher server has expired; the server will not start.',
          fileWhere + ' expired {{ $value | humanizeDuration }} ago. The container crash-loops with "x509: certificate has expired or is not yet valid" at its next start. ' + lib.advice('$labels.path', '-1.0'),
        ),
        alert(
          'RancherK3sCertificatesNotRenewed', 'critical', '15m',
          |||
            (
              min by (instance, container) (%(k3s)s) - time() < %(warn)d * 86400
            )
            and on (instance, container)
            (
              max by (instance, container) (cert_not_after_seconds{%(ui)s})
                - on (instance, container)
              min by (instance, container) (%(k3s)s)
              > %(gap)d * 86400
            )
          ||| % { k3s: k3sCerts, ui: ui, warn: t.warningDays, gap: t.gapDays },
          'The Rancher UI certificate was renewed but the k3s certificates were not.',
          '{{ $path := "" }}{{ with printf "bottomk(1, %s)" $labels.instance $labels.container | query }}{{ with first . }}{{ $path = .Labels.path }}{{ end }}{{ end }}' % std.strReplace(inUse('cert_not_after_seconds{%s, instance="%%s", container="%%s"}' % k3s), '"', '\\"')
          + '{{ $path }} ' + where + ' expires in {{ $value | humanizeDuration }}, while the UI certificate the browser shows was renewed and looks fine. ' + lib.advice('$path', '$value'),
        ),
        alert(
          'RancherK3sCertificatesRenewOnRestart', 'warning', '1h',
          // A release that renews on start, whose earliest k3s leaf is inside the renewal window
          // and expires soon: it has not been restarted since it entered the window.
          |||
            (
              min by (instance, container) (%(leaves)s) - time()
                < on (instance, container) (rancher_cert_exporter_k3s_renewal_window_seconds{%(all)s} > 0)
            ) < %(warn)d * 86400
          ||| % { leaves: inUse('cert_not_after_seconds{%s, ca="false", path!~".+/dynamic-cert\\\\.json"}' % k3s), all: all, warn: t.warningDays },
          'A restart of the Rancher server would renew its k3s certificates.',
          'The earliest k3s leaf of container {{ $labels.container }} on {{ $labels.instance }} expires in {{ $value | humanizeDuration }}, inside the window in which k3s renews it on start; the container has not started since. Restart it (docker restart {{ $labels.container }}, or rancher-cert-exporter rotate, which picks a restart here and verifies it).',
        ),
        alert(
          'RancherClusterCertificateExpiringSoon', 'warning', '1h',
          '(%s - time()) <= %d * 86400' % [secretCerts, t.warningDays],
          "A certificate kept as a secret in a Rancher server's cluster expires within %d days." % t.warningDays,
          'Secret {{ $labels.path }} in the cluster of container {{ $labels.container }} on {{ $labels.instance }} ' + lib.when + '. ' + lib.secretAdvice,
        ),
        alert(
          'RancherClusterCertificateExpiringCritical', 'critical', '15m',
          '(%s - time()) <= %d * 86400' % [secretCerts, t.criticalDays],
          "A certificate kept as a secret in a Rancher server's cluster expires within %d days." % t.criticalDays,
          'Secret {{ $labels.path }} in the cluster of container {{ $labels.container }} on {{ $labels.instance }} ' + lib.when + '. ' + lib.secretAdvice,
        ),
        alert(
          'RancherUICertificateExpiringSoon', 'warning', '15m',
          '(cert_not_after_seconds{%s} - time()) < %d * 86400' % [ui, t.uiWarningDays],
          "The Rancher UI certificate expires within %d days; Rancher's own renewal has failed." % t.uiWarningDays,
          'The UI certificate of container {{ $labels.container }} on {{ $labels.instance }} ({{ $labels.path }}) expires in {{ $value | humanizeDuration }}. Rancher renews it 7 days before expiry; that has not happened.',
        ),
        alert(
          'RancherUICertificateUntrustedByAgents', 'critical', '0m',
          'rancher_cert_exporter_ui_chain_trusted{%s} == 0' % all,
          'Downstream agents will not trust the Rancher UI certificate.',
          'The chain the Rancher UI of container {{ $labels.container }} on {{ $labels.instance }} serves does not verify against what the agents of its downstream clusters trust (the cacerts setting, or the system roots when it is empty, for the host of server-url): cattle-cluster-agent and rancher-system-agent fail at their next connection while the UI still shows the clusters as active. Put the certificate the agents trust back, or update cacerts and the agents (the runbook has both).',
        ),
        alert(
          'RancherCACertsChanged', 'warning', '0m',
          // More than one checksum within the window: the cacerts setting changed.
          'count by (instance, container) (count by (instance, container, sha256) (last_over_time(rancher_cert_exporter_cacerts_info{%s}[%dd]))) > 1' % [all, t.caChangeDays],
          'The cacerts checksum downstream agents pin has changed.',
          'The cacerts setting of container {{ $labels.container }} on {{ $labels.instance }} changed within the last %d day(s). Agents registered with the old checksum (CATTLE_CA_CHECKSUM) refuse the server until they are updated: the runbook has the procedure.' % t.caChangeDays,
        ),
        alert(
          'RancherCACertificateExpiringSoon', 'warning', '1h',
          '(%s - time()) <= %d * 86400' % [cacerts, t.caWarningDays],
          'The CA that downstream agents trust expires within %d days.' % t.caWarningDays,
          'The CA {{ $labels.path }} of the cacerts setting of container {{ $labels.container }} on {{ $labels.instance }} ({{ $labels.subject_cn }}) ' + lib.when + '. It is the CA the chain the UI serves ends in (while that chain is not read, every CA of cacerts counts). Nothing renews it, and every downstream agent trusts only cacerts in strict mode: plan the new CA and the agents\' update (the runbook has the procedure).',
        ),
        alert(
          'RancherDownstreamCertificateExpiringSoon', 'warning', '1h',
          '(%s - time()) <= %d * 86400' % [downstream, t.warningDays],
          'A certificate of a cluster the Rancher server manages expires within %d days.' % t.warningDays,
          'Certificate {{ $labels.path }} of cluster ' + clusterName + ', managed by container {{ $labels.container }} on {{ $labels.instance }}, ' + lib.when + '. ' + rotateRKE1,
        ),
        alert(
          'RancherDownstreamCertificateExpiringCritical', 'critical', '15m',
          '(%s - time()) <= %d * 86400' % [downstream, t.criticalDays],
          'A certificate of a cluster the Rancher server manages expires within %d days.' % t.criticalDays,
          'Certificate {{ $labels.path }} of cluster ' + clusterName + ', managed by container {{ $labels.container }} on {{ $labels.instance }}, ' + lib.when + '. ' + rotateRKE1,
        ),
        alert(
          'RancherDownstreamCertificateExpired', 'critical', '5m',
          '(time() - %s) >= 0' % downstream,
          'A certificate of a cluster the Rancher server manages has expired.',
          'Certificate {{ $labels.path }} of cluster ' + clusterName + ', managed by container {{ $labels.container }} on {{ $labels.instance }}, expired {{ $value | humanizeDuration }} ago: its control plane refuses its clients. ' + rotateRKE1 + ' An expired CA needs the rotation with a new CA.',
        ),
        alert(
          'RancherDownstreamClusterDisconnected', 'warning', '5m',
          'rancher_cert_exporter_downstream_cluster_connected{%s} == 0' % all,
          "A downstream cluster's agent is not connected to the Rancher server.",
          'The cluster agent of ' + clusterName + ', managed by container {{ $labels.container }} on {{ $labels.instance }}, is not connected: Rancher cannot reach the cluster. Look at the cattle-cluster-agent pod in the cluster: "Configured cacerts checksum (…) does not match" means it no longer trusts the server (the runbook has the fix).',
        ),
        alert(
          'RancherAgentsLostAfterCertificateChange', 'critical', '5m',
          |||
            rancher_cert_exporter_downstream_cluster_connected{%(all)s} == 0
            and on (instance, container)
            (
              count by (instance, container) (count by (instance, container, sha256) (last_over_time(rancher_cert_exporter_cacerts_info{%(all)s}[%(days)dd]))) > 1
              or
              rancher_cert_exporter_ui_chain_trusted{%(all)s} == 0
            )
          ||| % { all: all, days: t.caChangeDays },
          'Downstream clusters were lost after a change of the certificate their agents trust.',
          'Cluster ' + clusterName + ' of container {{ $labels.container }} on {{ $labels.instance }} is disconnected while the cacerts checksum its agent pins changed within the last %d day(s), or the UI certificate no longer verifies against it: its cattle-cluster-agent exits with "Configured cacerts checksum (…) does not match". Update the agents\' CATTLE_CA_CHECKSUM, or put the old certificate back (the runbook has both).' % t.caChangeDays,
        ),
        alert(
          'RancherCertificateMissingName', 'warning', '15m',
          'rancher_cert_exporter_certificate_name_missing{%s} == 1' % all,
          'A certificate of a Rancher server does not cover a name its clients use.',
          '{{ $labels.path }} ({{ $labels.source }}) ' + where + ' does not cover {{ $labels.name }}, which clients reach it by: they fail with "x509: certificate is valid for ..., not {{ $labels.name }}". '
          + '{{ if match "tls-rancher-internal" $labels.path }}Downstream clusters reach Rancher\'s internal listener by the rancher-internal Service and stall provisioning (rancher/rancher#54407, Rancher 2.14.0): upgrade to 2.14.1 or later and restart, or delete the secret cattle-system/tls-rancher-internal and restart the container.'
          + '{{ else if eq $labels.source "ui" }}Agents and browsers reach the UI by the host of server-url: issue the UI certificate for it, or correct server-url.'
          + '{{ else }}Rotate the k3s certificates (rancher-cert-exporter rotate): k3s issues 6443\'s certificate for these names again.{{ end }}',
        ),
        alert(
          'RancherCertExporterDown', 'warning', '15m',
          'up{%s} == 0' % up,
          'Prometheus cannot scrape rancher-cert-exporter: no Rancher certificate is watched.',
          'Prometheus has not scraped rancher-cert-exporter at {{ $labels.instance }} for 15 minutes: every certificate alert of the Rancher servers it watches is silent, whatever expires meanwhile. Check that the service runs (systemctl status rancher-cert-exporter) and answers on /metrics.',
        ),
        alert(
          'RancherCertExporterAbsent', 'warning', '15m',
          'absent(up{%s})' % up,
          'Prometheus scrapes no rancher-cert-exporter at all.',
          'No target matching {%s} has been scraped for 15 minutes: the scrape configuration lost the exporter, or service discovery no longer finds it. Every certificate alert of the Rancher servers is silent until it is back.' % up,
        ),
        alert(
          'RancherCertExporterSourceDown', 'warning', '10m',
          'rancher_cert_exporter_source_up{%s} == 0' % lib.selector(c, ['source=~"k3s|file"']),
          "rancher-cert-exporter cannot read a container's certificates.",
          'The {{ $labels.source }} certificates of container "{{ $labels.container }}" on {{ $labels.instance }} could not be read for 10 minutes; their expiry is not watched. rancher_cert_exporter_read_errors_total tells the reason.',
        ),
        alert(
          'RancherCertAutoRotationFailed', 'critical', '0m',
          // The last automatic rotation of a container failed, and no rotation succeeded since.
          |||
            max by (instance, container) (rancher_cert_exporter_rotation_last_timestamp_seconds{%(auto)s})
            unless on (instance, container)
            (
              max by (instance, container) (rancher_cert_exporter_rotation_last_timestamp_seconds{%(ok)s})
                > on (instance, container)
              max by (instance, container) (rancher_cert_exporter_rotation_last_timestamp_seconds{%(auto)s})
            )
          ||| % {
            auto: lib.selector(c, ['kind="rotate"', 'trigger="auto"', 'result="failed"']),
            ok: lib.selector(c, ['kind="rotate"', 'result="succeeded"']),
          },
          "An automatic rotation of a Rancher server's k3s certificates failed.",
          'The automatic rotation of container {{ $labels.container }} on {{ $labels.instance }} failed at {{ $value | humanizeTimestamp }}. The container was brought back as it was and the backup kept; no new attempt before --rotation.auto-backoff has passed, and the certificates still expire. Read the job (GET /api/v1/rotations, or the exporter log line "automatic rotation failed"), fix the cause, then rotate by hand: rancher-cert-exporter rotate --rancher.container {{ $labels.container }}.',
        ),
        alert(
          'RancherServerCrashLooping', 'critical', '5m',
          'delta(rancher_cert_exporter_container_restarts{%s}[15m]) >= 3' % all,
          'A Rancher server container is restarting over and over.',
          'Container {{ $labels.container }} on {{ $labels.instance }} restarted {{ $value | humanize }} times in 15 minutes. Expired k3s certificates are the usual cause: check K3sCertificateExpired and the container log.',
        ),
      ],
    }],
  },

  // Alertmanager's inhibition: a critical alert mutes the warning of the same certificate, and
  // the expired one the critical one.
  alertmanagerInhibitRules+:: {
    local c = $._config,
    inhibit_rules+: [
      {
        source_matchers: ['severity="critical"', 'alertname=~"K3sCertificate.+|RancherClusterCertificate.+"'],
        target_matchers: ['severity="warning"', 'alertname=~"K3sCertificate.+|RancherClusterCertificate.+"'],
        equal: c.inhibitEqual,
      },
      {
        source_matchers: ['alertname="K3sCertificateExpired"'],
        target_matchers: ['alertname="K3sCertificateExpiringCritical"'],
        equal: c.inhibitEqual,
      },
      {
        source_matchers: ['severity="critical"', 'alertname=~"RancherDownstreamCertificate.+"'],
        target_matchers: ['severity="warning"', 'alertname=~"RancherDownstreamCertificate.+"'],
        equal: c.inhibitEqual,
      },
      {
        source_matchers: ['alertname="RancherDownstreamCertificateExpired"'],
        target_matchers: ['alertname="RancherDownstreamCertificateExpiringCritical"'],
        equal: c.inhibitEqual,
      },
      {
        // A cluster lost after a certificate change is also disconnected: one alert says both.
        source_matchers: ['alertname="RancherAgentsLostAfterCertificateChange"'],
        target_matchers: ['alertname="RancherDownstreamClusterDisconnected"'],
        equal: ['instance', 'container', 'cluster'],
      },
    ],
  },
}
