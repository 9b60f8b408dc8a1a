// The Grafana dashboard: every panel query carries the configured selector, and its colours
// the configured thresholds. The end-to-end test runs every query against a real Prometheus.
{
  grafanaDashboards+:: {
    local c = $._config,
    local t = c.thresholds,
    local prefix = if c.selector == '' then '' else c.selector + ', ',
    // q adds the selector to a panel query.
    local q(expr) = std.strReplace(expr, '{instance=~', '{' + prefix + 'instance=~'),
    // inUse and unused keep the certificates the container's release does not use (left by an
    // earlier release, or by Rancher 2.0-2.2) out of a query, or keep only them, as the alerts do.
    local unusedOn = ' on (instance, container, path) rancher_cert_exporter_certificate_unused{instance=~\"$instance\", container=~\"$container\"}',
    local inUse(expr) = '(' + expr + ' unless' + unusedOn + ')',
    local unused(expr) = '(' + expr + ' and' + unusedOn + ')',
    // lv adds the selector to a variable's label_values query.
    local lv(query) = q(std.strReplace(query, 'rancher_cert_exporter_build_info,', 'rancher_cert_exporter_build_info{' + c.selector + '},')),

    'rancher-cert-exporter.json':
    {
      "uid": c.dashboardUID,
      "title": c.dashboardTitle,
      "description": "k3s and UI certificates of single-node Rancher servers, from rancher-cert-exporter.",
      "tags": [
        "rancher",
        "k3s",
        "certificates"
      ],
      "editable": true,
      "graphTooltip": 1,
      "refresh": "1m",
      "schemaVersion": 41,
      "time": {
        "from": "now-7d",
        "to": "now"
      },
      "timezone": "",
      "version": 1,
      "links": [
        {
          "title": "Runbook",
          "type": "link",
          "url": c.runbookURL,
          "targetBlank": true
        }
      ],
      "templating": {
        "list": [
          {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1
          },
          {
            "name": "instance",
            "label": "Exporter",
            "type": "query",
            "datasource": {
              "type": "prometheus",
              "uid": "${datasource}"
            },
            "query": {
              "query": lv("label_values(rancher_cert_exporter_build_info, instance)"),
              "refId": "instance"
            },
            "definition": lv("label_values(rancher_cert_exporter_build_info, instance)"),
            "multi": true,
            "includeAll": true,
            "allValue": ".*",
            "current": {},
            "refresh": 2,
            "sort": 1
          },
          {
            "name": "container",
            "label": "Container",
            "type": "query",
            "datasource": {
              "type": "prometheus",
              "uid": "${datasource}"
            },
            "query": {
              "query": lv("label_values(cert_not_after_seconds{instance=~\"$instance\"}, container)"),
              "refId": "container"
            },
            "definition": lv("label_values(cert_not_after_seconds{instance=~\"$instance\"}, container)"),
            "multi": true,
            "includeAll": true,
            "allValue": ".*",
            "current": {},
            "refresh": 2,
            "sort": 1
          }
        ]
      },
      "annotations": {
        "list": [
          {
            "builtIn": 1,
            "datasource": {
              "type": "grafana",
              "uid": "-- Grafana --"
            },
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
          }
        ]
      },
      "panels": [
        {
          "type": "stat",
          "title": "Soonest k3s certificate expiry",
          "description": "Time left on the earliest k3s certificate of each container. Orange under 30 days, red under 7 (the alert thresholds).",
          "gridPos": {
            "h": 5,
            "w": 8,
            "x": 0,
            "y": 0
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("min by (instance, container) " + inUse("cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", source=~\"k3s|listener\"}") + " - time()"),
              "refId": "A",
              "legendFormat": "{{container}}",
              "instant": true,
              "range": false
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "s",
              "decimals": 0,
              "thresholds": {
                "mode": "absolute",
                "steps": [
                  {
                    "color": "red",
                    "value": null
                  },
                  {
                    "color": "orange",
                    "value": t.criticalDays * 86400
                  },
                  {
                    "color": "green",
                    "value": t.warningDays * 86400
                  }
                ]
              }
            },
            "overrides": []
          },
          "options": {
            "reduceOptions": {
              "calcs": [
                "lastNotNull"
              ],
              "fields": "",
              "values": false
            },
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name"
          },
          "id": 1,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "stat",
          "title": "Rancher UI certificate expiry",
          "description": "Time left on the certificate the Rancher UI serves. Rancher renews it 7 days before expiry; red under 5 days means that renewal failed.",
          "gridPos": {
            "h": 5,
            "w": 8,
            "x": 8,
            "y": 0
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("max by (instance, container) (cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", source=\"ui\"}) - time()"),
              "refId": "A",
              "legendFormat": "{{container}}",
              "instant": true,
              "range": false
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "s",
              "decimals": 0,
              "thresholds": {
                "mode": "absolute",
                "steps": [
                  {
                    "color": "red",
                    "value": null
                  },
                  {
                    "color": "green",
                    "value": t.uiWarningDays * 86400
                  }
                ]
              }
            },
            "overrides": []
          },
          "options": {
            "reduceOptions": {
              "calcs": [
                "lastNotNull"
              ],
              "fields": "",
              "values": false
            },
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name"
          },
          "id": 2,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "stat",
          "title": "Gap: UI outlives k3s by",
          "description": "How much longer the UI certificate is valid than the earliest k3s certificate. Over 30 days means the UI was renewed and k3s was not: the trap RancherK3sCertificatesNotRenewed alerts on.",
          "gridPos": {
            "h": 5,
            "w": 8,
            "x": 16,
            "y": 0
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("max by (instance, container) (cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", source=\"ui\"})\n  - on (instance, container)\nmin by (instance, container) " + inUse("cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", source=~\"k3s|listener\"}")),
              "refId": "A",
              "legendFormat": "{{container}}",
              "instant": true,
              "range": false
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "s",
              "decimals": 0,
              "thresholds": {
                "mode": "absolute",
                "steps": [
                  {
                    "color": "green",
                    "value": null
                  },
                  {
                    "color": "red",
                    "value": t.gapDays * 86400
                  }
                ]
              }
            },
            "overrides": []
          },
          "options": {
            "reduceOptions": {
              "calcs": [
                "lastNotNull"
              ],
              "fields": "",
              "values": false
            },
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "value_and_name"
          },
          "id": 3,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "table",
          "title": "Rancher servers",
          "description": "What each Rancher container runs, as it reports, and what a start does to its k3s certificates: renewal never (2.3), on-start, or unknown, and the window in which a start renews them (90 days, 120 from k3s v1.33.1 / Rancher 2.11.15). Where it renews on start, a restart is the fix; elsewhere, a rotation.",
          "gridPos": {
            "h": 6,
            "w": 24,
            "x": 0,
            "y": 5
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_k3s_renewal_window_seconds{instance=~\"$instance\", container=~\"$container\"} / 86400\n  * on (instance, container) group_left (rancher_version, k3s_version, renewal)\nrancher_cert_exporter_rancher_info{instance=~\"$instance\", container=~\"$container\"}"),
              "refId": "A",
              "legendFormat": "__auto",
              "instant": true,
              "range": false,
              "format": "table"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "d",
              "decimals": 0,
              "custom": {
                "cellOptions": {
                  "type": "auto"
                }
              }
            },
            "overrides": []
          },
          "options": {
            "showHeader": true,
            "sortBy": [
              {
                "displayName": "container",
                "desc": false
              }
            ]
          },
          "transformations": [
            {
              "id": "organize",
              "options": {
                "excludeByName": {
                  "Time": true,
                  "__name__": true,
                  "job": true
                },
                "indexByName": {
                  "instance": 0,
                  "container": 1,
                  "rancher_version": 2,
                  "k3s_version": 3,
                  "renewal": 4,
                  "Value": 5
                },
                "renameByName": {
                  "rancher_version": "Rancher",
                  "k3s_version": "k3s",
                  "renewal": "Renewal on start",
                  "Value": "Renewal window"
                }
              }
            }
          ],
          "id": 11,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "table",
          "title": "Certificates",
          "description": "Every certificate the exporter reads that the servers use, with the days left; coloured by the alert thresholds (30 and 7 days). Files left by earlier releases are in the panel below.",
          "gridPos": {
            "h": 12,
            "w": 24,
            "x": 0,
            "y": 11
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q(inUse("(cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\"} - time()) / 86400")),
              "refId": "A",
              "legendFormat": "__auto",
              "instant": true,
              "range": false,
              "format": "table"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "d",
              "decimals": 1,
              "thresholds": {
                "mode": "absolute",
                "steps": [
                  {
                    "color": "red",
                    "value": null
                  },
                  {
                    "color": "orange",
                    "value": t.criticalDays
                  },
                  {
                    "color": "green",
                    "value": t.warningDays
                  }
                ]
              },
              "custom": {
                "cellOptions": {
                  "type": "auto"
                },
                "filterable": true
              }
            },
            "overrides": [
              {
                "matcher": {
                  "id": "byName",
                  "options": "Days left"
                },
                "properties": [
                  {
                    "id": "custom.cellOptions",
                    "value": {
                      "type": "color-background"
                    }
                  }
                ]
              }
            ]
          },
          "options": {
            "showHeader": true,
            "sortBy": [
              {
                "displayName": "Days left",
                "desc": false
              }
            ]
          },
          "transformations": [
            {
              "id": "organize",
              "options": {
                "excludeByName": {
                  "Time": true,
                  "__name__": true,
                  "job": true
                },
                "indexByName": {
                  "instance": 0,
                  "container": 1,
                  "source": 2,
                  "path": 3,
                  "subject_cn": 4,
                  "issuer_cn": 5,
                  "ca": 6,
                  "serial_number": 7,
                  "Value": 8
                },
                "renameByName": {
                  "Value": "Days left"
                }
              }
            }
          ],
          "id": 4,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "table",
          "title": "Unused certificates",
          "description": "Certificate files the container's release neither writes nor renews: left by an earlier release (or by Rancher 2.0-2.2 in management-state/tls). Never alerted on; safe to delete after a backup.",
          "gridPos": {
            "h": 7,
            "w": 24,
            "x": 0,
            "y": 23
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q(unused("(cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\"} - time()) / 86400")),
              "refId": "A",
              "legendFormat": "__auto",
              "instant": true,
              "range": false,
              "format": "table"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "d",
              "decimals": 1
            },
            "overrides": []
          },
          "options": {
            "showHeader": true,
            "sortBy": [
              {
                "displayName": "Days left",
                "desc": false
              }
            ]
          },
          "transformations": [
            {
              "id": "organize",
              "options": {
                "excludeByName": {
                  "Time": true,
                  "__name__": true,
                  "job": true
                },
                "indexByName": {
                  "instance": 0,
                  "container": 1,
                  "source": 2,
                  "path": 3,
                  "subject_cn": 4,
                  "issuer_cn": 5,
                  "ca": 6,
                  "serial_number": 7,
                  "Value": 8
                },
                "renameByName": {
                  "Value": "Days left"
                }
              }
            }
          ],
          "id": 13,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Days left over time",
          "description": "Days left on each leaf certificate (CAs, ten years, left out). A renewal shows as a jump of a year.",
          "gridPos": {
            "h": 9,
            "w": 24,
            "x": 0,
            "y": 30
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q(inUse("(cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", ca=\"false\"} - time()) / 86400")),
              "refId": "A",
              "legendFormat": "{{container}} {{source}} {{path}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "d",
              "thresholds": {
                "mode": "absolute",
                "steps": [
                  {
                    "color": "red",
                    "value": null
                  },
                  {
                    "color": "orange",
                    "value": t.criticalDays
                  },
                  {
                    "color": "green",
                    "value": t.warningDays
                  }
                ]
              },
              "custom": {
                "thresholdsStyle": {
                  "mode": "line+area"
                }
              }
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "table",
              "placement": "right",
              "calcs": [
                "lastNotNull"
              ]
            },
            "tooltip": {
              "mode": "multi",
              "sort": "asc"
            }
          },
          "id": 5,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Sources up",
          "description": "1 when the last read of a container's k3s tree, UI or host files worked.",
          "gridPos": {
            "h": 8,
            "w": 8,
            "x": 0,
            "y": 39
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_source_up{instance=~\"$instance\", container=~\"$container\"}"),
              "refId": "A",
              "legendFormat": "{{container}} {{source}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "bool_yes_no",
              "min": 0,
              "max": 1
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "list",
              "placement": "bottom"
            },
            "tooltip": {
              "mode": "multi"
            }
          },
          "id": 6,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Read errors by reason",
          "description": "Certificate reads that failed, per second, by source and reason.",
          "gridPos": {
            "h": 8,
            "w": 8,
            "x": 8,
            "y": 39
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("sum by (source, reason) (rate(rancher_cert_exporter_read_errors_total{instance=~\"$instance\"}[$__rate_interval]))"),
              "refId": "A",
              "legendFormat": "{{source}} {{reason}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "ops"
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "list",
              "placement": "bottom"
            },
            "tooltip": {
              "mode": "multi"
            }
          },
          "id": 7,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Container restarts",
          "description": "Restart count of each Rancher container: a climbing line is a crash loop.",
          "gridPos": {
            "h": 8,
            "w": 8,
            "x": 16,
            "y": 39
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_container_restarts{instance=~\"$instance\", container=~\"$container\"}"),
              "refId": "A",
              "legendFormat": "{{container}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "short",
              "decimals": 0
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "list",
              "placement": "bottom"
            },
            "tooltip": {
              "mode": "multi"
            }
          },
          "id": 8,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Scrape duration",
          "description": "How long the exporter took to read every source, and each source.",
          "gridPos": {
            "h": 8,
            "w": 8,
            "x": 0,
            "y": 47
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_scrape_duration_seconds{instance=~\"$instance\"}"),
              "refId": "A",
              "legendFormat": "{{instance}} total"
            },
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_source_duration_seconds{instance=~\"$instance\", container=~\"$container\"}"),
              "refId": "B",
              "legendFormat": "{{container}} {{source}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "s"
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "list",
              "placement": "bottom"
            },
            "tooltip": {
              "mode": "multi"
            }
          },
          "id": 9,
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          }
        },
        {
          "type": "timeseries",
          "title": "Rotations",
          "description": "Certificate rotations and restores the exporter ran, by result and trigger (api, auto, or a CLI job it finished); the line under it is 1 while one runs.",
          "gridPos": {
            "h": 8,
            "w": 16,
            "x": 8,
            "y": 47
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("sum by (container, kind, result, trigger) (rancher_cert_exporter_rotations_total{instance=~\"$instance\", container=~\"$container\"})"),
              "refId": "A",
              "legendFormat": "{{container}} {{kind}} {{result}} ({{trigger}})"
            },
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("max by (container) (rancher_cert_exporter_rotation_in_progress{instance=~\"$instance\", container=~\"$container\"})"),
              "refId": "B",
              "legendFormat": "{{container}} in progress"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "short",
              "decimals": 0
            },
            "overrides": []
          },
          "options": {
            "legend": {
              "displayMode": "list",
              "placement": "bottom"
            },
            "tooltip": {
              "mode": "multi"
            }
          },
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          },
          "id": 10
        },
        {
          "type": "stat",
          "title": "Next automatic rotation",
          "description": "When the next automatic rotation of each container runs (--rotation.auto=on) or would run (plan): the next opening of --rotation.window for what expires within --rotation.auto-before, at once for what has expired. No data while nothing is due or automatic rotation is off.",
          "gridPos": {
            "h": 4,
            "w": 24,
            "x": 0,
            "y": 55
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("max by (container) (rancher_cert_exporter_auto_rotation_next_timestamp_seconds{instance=~\"$instance\", container=~\"$container\"}) * 1000"),
              "refId": "A",
              "legendFormat": "{{container}}"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "dateTimeAsIso"
            },
            "overrides": []
          },
          "options": {
            "reduceOptions": {
              "calcs": ["lastNotNull"]
            },
            "textMode": "value_and_name"
          },
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          },
          "id": 12
        },
        {
          "type": "table",
          "title": "Downstream clusters",
          "description": "The clusters each Rancher server manages (but its own): whether the cluster agent is connected (Connected, before 2.6 Ready), and the soonest certificate an RKE1 cluster reports (certificatesExpiration). A cluster lost after a change of cacerts or of the UI certificate fires RancherAgentsLostAfterCertificateChange.",
          "gridPos": {
            "h": 8,
            "w": 24,
            "x": 0,
            "y": 59
          },
          "targets": [
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("rancher_cert_exporter_downstream_cluster_connected{instance=~\"$instance\", container=~\"$container\"}\n  * on (instance, container, cluster) group_left (display_name, driver, provider, kubernetes_version)\nrancher_cert_exporter_downstream_cluster_info{instance=~\"$instance\", container=~\"$container\"}"),
              "refId": "A",
              "instant": true,
              "range": false,
              "format": "table"
            },
            {
              "datasource": {
                "type": "prometheus",
                "uid": "${datasource}"
              },
              "expr": q("min by (instance, container, cluster) (\n  label_replace(cert_not_after_seconds{instance=~\"$instance\", container=~\"$container\", source=\"downstream\"}, \"cluster\", \"$1\", \"path\", \"([^/]+)/.+\")\n) / 86400 - time() / 86400"),
              "refId": "B",
              "instant": true,
              "range": false,
              "format": "table"
            }
          ],
          "fieldConfig": {
            "defaults": {
              "unit": "none",
              "custom": {
                "cellOptions": {
                  "type": "auto"
                }
              }
            },
            "overrides": [
              {
                "matcher": { "id": "byName", "options": "Value #A" },
                "properties": [
                  { "id": "displayName", "value": "Agent" },
                  { "id": "mappings", "value": [{ "type": "value", "options": { "0": { "text": "not connected", "color": "orange" }, "1": { "text": "connected", "color": "green" } } }] },
                  { "id": "custom.cellOptions", "value": { "type": "color-background" } }
                ]
              },
              {
                "matcher": { "id": "byName", "options": "Value #B" },
                "properties": [
                  { "id": "displayName", "value": "Soonest certificate" },
                  { "id": "unit", "value": "d" },
                  { "id": "decimals", "value": 0 },
                  { "id": "thresholds", "value": { "mode": "absolute", "steps": [{ "color": "red", "value": null }, { "color": "orange", "value": t.criticalDays }, { "color": "green", "value": t.warningDays }] } },
                  { "id": "custom.cellOptions", "value": { "type": "color-background" } }
                ]
              }
            ]
          },
          "options": {
            "showHeader": true
          },
          "transformations": [
            { "id": "merge", "options": {} },
            {
              "id": "organize",
              "options": {
                "excludeByName": { "Time": true, "__name__": true, "job": true },
                "indexByName": { "instance": 0, "container": 1, "display_name": 2, "cluster": 3, "driver": 4, "provider": 5, "kubernetes_version": 6, "Value #A": 7, "Value #B": 8 },
                "renameByName": { "display_name": "Cluster", "cluster": "ID", "driver": "Driver", "provider": "Provider", "kubernetes_version": "Kubernetes" }
              }
            }
          ],
          "datasource": {
            "type": "prometheus",
            "uid": "${datasource}"
          },
          "id": 14
        }
      ]
    },
  },
}
