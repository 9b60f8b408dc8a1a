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

  // secretAdvice says what renews a certificate kept as a secret of the embedded cluster: for
  // those whose owner issues them anew, the rotation (and that the owner, where it renews them,
  // is late).
  secretAdvice::
    '{{ $key := reReplaceAll "/[^/]+$" "" $labels.path }}'
    + '{{ $w := 0.0 }}{{ with printf "rancher_cert_exporter_owner_renewal_window_seconds{instance=%q, container=%q, path=%q}" $labels.instance $labels.container $labels.path | query }}{{ with first . }}{{ $w = value . }}{{ end }}{{ end }}'
    + '{{ if gt $w 0.0 }}Its owner renews it {{ $w | humanizeDuration }} before expiry and has not. {{ end }}'
    + '{{ if match "^cattle-system/cattle-webhook-tls/" $labels.path }}'
    + "Rancher's webhook certificate: once expired, every change fails with failed calling webhook \"rancher.cattle.io\". "
    + '{{ else if match "^cattle-system/tls-rancher-internal/" $labels.path }}'
    + "Rancher's internal listener. "
    + '{{ else if match "^cattle-system/serving-cert/" $labels.path }}'
    + "Rancher's UI certificate. "
    + '{{ end }}'
    + '{{ if match "^cattle-system/(cattle-webhook-tls|tls-rancher-internal|serving-cert)/" $labels.path }}'
    + 'Renew it with its owner: rancher-cert-exporter rotate --rancher.container {{ $labels.container }} --secret {{ $key }} (or POST /api/v1/containers/{{ $labels.container }}/rotate {"secrets": ["{{ $key }}"]}; strategy auto plans it too): backup, delete, restart, the owner issues it anew, verified, put back on failure.'
    + '{{ else if match "^kube-system/k3s-serving/" $labels.path }}'
    + "k3s's 6443 serving certificate: rancher-cert-exporter rotate renews it (on 2.4 to 2.5.7 it deletes this secret too)."
    + '{{ else if match "^cattle-system/(tls-rancher|cattle-webhook-ca|tls-rancher-internal-ca)/" $labels.path }}'
    + 'A CA (ten years); nothing renews it: the runbook says what depends on it.'
    + '{{ else }}See the runbook for what renews it.{{ end }}',
}
