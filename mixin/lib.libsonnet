// Helpers of the mixin.
{
  // selector joins the configured selector and extra matchers, without empty parts.
  selector(config, extra):: std.join(', ', std.filter(function(m) m != '', [config.selector] + extra)),

  // when says how long a certificate has left, or that it has expired ($value: seconds left).
  when:: '{{ if lt $value 0.0 }}has expired{{ else }}expires in {{ $value | humanizeDuration }}{{ end }}',

  // advice says what fixes a k3s certificate file on that container's release: a restart where
  // a start renews it — its seconds left, `left`, are under the renewal window the exporter
  // reports for the container (the serving certificate's, for dynamic-cert.json) — else a
  // rotation.
  advice(path, left)::
    '{{ $w := 0.0 }}{{ $m := "rancher_cert_exporter_k3s_renewal_window_seconds" }}'
    + '{{ if match "dynamic-cert.json$" %s }}{{ $m = "rancher_cert_exporter_k3s_serving_renewal_window_seconds" }}{{ end }}' % path
    + '{{ with printf "%s{instance=%q, container=%q}" $m $labels.instance $labels.container | query }}{{ with first . }}{{ $w = value . }}{{ end }}{{ end }}'
    + '{{ if and (gt $w 0.0) (lt %s $w) }}Restart the container: k3s renews its certificates on start.' % left
    + '{{ else }}Rotate the k3s certificates: a start of this release does not renew it.{{ end }}',

  // secretAdvice says what renews a certificate kept as a secret of the embedded cluster.
  secretAdvice::
    '{{ if match "^cattle-system/cattle-webhook-(tls|ca)/" $labels.path }}'
    + "Rancher's webhook certificate: once expired, every change fails with failed calling webhook \"rancher.cattle.io\". Delete the secrets cattle-system/cattle-webhook-tls and cattle-webhook-ca and the rancher-webhook pod; the webhook re-creates them."
    + '{{ else if match "^kube-system/k3s-serving/" $labels.path }}'
    + "k3s's 6443 serving certificate: rancher-cert-exporter rotate renews it (on 2.4 to 2.5.7 it deletes this secret too)."
    + '{{ else if match "^cattle-system/(serving-cert|tls-rancher)/" $labels.path }}'
    + "Rancher's UI certificate or its CA: Rancher renews the certificate itself; delete the secret and restart the container if it did not."
    + '{{ else if match "^cattle-system/tls-rancher-internal" $labels.path }}'
    + "Rancher's internal listener: delete the secret and restart the container; Rancher re-issues it."
    + '{{ else }}See the runbook for what renews it.{{ end }}',
}
