// Package metrics names every metric the exporter serves, with its help and labels: the one
// place to read them. The packages that produce them make their collectors from here.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Namespace prefixes the exporter's own metrics (and build_info).
const Namespace = "rancher_cert_exporter"

// Metric is a metric's name, help and labels.
type Metric struct {
	Name, Help string
	Labels     []string
}

// Desc is the metric's description, for a collector that makes const metrics.
func (m Metric) Desc() *prometheus.Desc { return prometheus.NewDesc(m.Name, m.Help, m.Labels, nil) }

// GaugeVec and CounterVec make the metric's vector.
func (m Metric) GaugeVec() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: m.Name, Help: m.Help}, m.Labels)
}

func (m Metric) CounterVec() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.Name, Help: m.Help}, m.Labels)
}

func own(name string) string { return Namespace + "_" + name }

// CertLabels are the labels of the certificate series.
var CertLabels = []string{"container", "source", "path", "subject_cn", "issuer_cn", "serial_number", "ca"}

// The certificate series: one of each per certificate file.
var (
	CertNotAfter  = Metric{"cert_not_after_seconds", "NotAfter of the first certificate in the file, as Unix seconds.", CertLabels}
	CertNotBefore = Metric{"cert_not_before_seconds", "NotBefore of the first certificate in the file, as Unix seconds.", CertLabels}
)

// The health of the reads.
var (
	SourceUp       = Metric{own("source_up"), "Whether the last read of the source succeeded (0 also when it did not end within the scrape's budget).", []string{"container", "source"}}
	SourceDuration = Metric{own("source_duration_seconds"), "How long the last read of the source took.", []string{"container", "source"}}
	SnapshotAge    = Metric{own("snapshot_age_seconds"), "How old the reported values of the source are: time since the read they come from.", []string{"container", "source"}}
	TreeReads      = Metric{own("tree_reads_total"), "Reads of the container's certificate tree through the Docker archive endpoint.", []string{"container"}}
	ReadErrors     = Metric{own("read_errors_total"), "Certificate reads that failed, by source and reason.", []string{"source", "reason"}}
	ScrapeDuration = Metric{own("scrape_duration_seconds"), "How long the whole scrape took.", nil}
	DockerUp       = Metric{own("docker_up"), "Whether the Docker engine answered the last listing within the scrape's budget.", nil}
	EngineEventsUp = Metric{own("engine_events_up"), "1 while the Docker engine's event stream is followed (containers inspected only when an event names one, and on a resync); 0 while it is broken and every scrape inspects them.", nil}
	Containers     = Metric{own("containers"), "The Rancher containers watched: found by the last inspection, or last found while the engine does not answer.", nil}
)

// What the exporter knows of each Rancher container.
var (
	ContainerRestarts  = Metric{own("container_restarts"), "Restarts of the Rancher container by its restart policy, as docker inspect reports.", []string{"container"}}
	ContainerState     = Metric{own("container_state"), "1 for the current state of the Rancher container, 0 for the others.", []string{"container", "state"}}
	RancherInfo        = Metric{own("rancher_info"), "The Rancher and k3s versions the container reports (\"\" when unknown) and what a start does to its k3s certificates: renewal never, on-start or unknown.", []string{"container", "rancher_version", "k3s_version", "renewal"}}
	RenewalWindow      = Metric{own("k3s_renewal_window_seconds"), "How long before expiry a start of the container renews its k3s leaf certificates; 0 when it never does or the version is unknown.", []string{"container"}}
	ServingWindow      = Metric{own("k3s_serving_renewal_window_seconds"), "The same for the 6443 serving certificate (dynamic-cert.json); 0 where k3s reloads it from its secret instead (before v1.19).", []string{"container"}}
	CertificateUnused  = Metric{own("certificate_unused"), "1 for a certificate file that the container's release neither writes nor renews: left by an earlier release (or by Rancher 2.0-2.2 in management-state/tls). No series for files in use.", []string{"container", "source", "path"}}
	OwnerRenewalWindow = Metric{own("owner_renewal_window_seconds"), "How long before expiry the owner of a certificate kept in the container's cluster renews it on this release (rancher-webhook, Rancher's listeners); no series where nothing renews it. Its alerts wait until the owner is late.", []string{"container", "source", "path"}}
	CACertsInfo        = Metric{own("cacerts_info"), "1; sha256 is the SHA-256 agents pin (CATTLE_CA_CHECKSUM) of what https://<server>/cacerts serves (\"\" when the cacerts setting is empty), agent_tls_mode the mode agents run in (strict or system-store).", []string{"container", "sha256", "agent_tls_mode"}}
	CACertsAnchor      = Metric{own("cacerts_anchor"), "1 for the certificate of the cacerts setting (path cacerts#<n>) that the chain the UI serves ends in — the CA the agents' trust rests on — 0 for the others; no series while that is not known (the UI chain not read, or cacerts empty).", []string{"container", "path"}}
	NamesCovered       = Metric{own("certificate_names_covered"), "1 when a certificate whose clients the exporter knows covers every name they reach it by — 6443's (127.0.0.1 or the kubeconfig's host, localhost, the kubernetes Service's address), the internal listener's (the rancher-internal Service's address), the UI's (the host of server-url) — 0 when one is missing.", []string{"container", "source", "path"}}
	NameMissing        = Metric{own("certificate_name_missing"), "1 for each name a certificate of certificate_names_covered does not cover.", []string{"container", "source", "path", "name"}}
	UIChainTrusted     = Metric{own("ui_chain_trusted"), "1 when the UI chain served verifies as an agent verifies it: against the cacerts setting as the only roots (the system roots when it is empty), for the host of server-url when set.", []string{"container"}}
)

// The clusters each server manages.
var (
	DownstreamConnected = Metric{own("downstream_cluster_connected"), "1 when the agent of a cluster the server manages is connected (its Connected condition is True; before Rancher 2.6, which has none, its Ready condition), 0 when not.", []string{"container", "cluster"}}
	DownstreamInfo      = Metric{own("downstream_cluster_info"), "1 for each cluster the server manages, but its own: its display name, driver (rancherKubernetesEngine, imported, k3s, rke2, ...), provider and Kubernetes version.", []string{"container", "cluster", "display_name", "driver", "provider", "kubernetes_version"}}
	RKE1Clusters        = Metric{own("rke1_clusters"), "How many RKE1 clusters the server manages: Rancher 2.12 and later refuse to start while there is one.", []string{"container"}}
)

// Rotation.
var (
	Rotations          = Metric{own("rotations_total"), "Certificate rotations and restores run by this process, by container, kind, result and trigger (api, cli or auto; dry runs not counted).", []string{"container", "kind", "result", "trigger"}}
	RotationLast       = Metric{own("rotation_last_timestamp_seconds"), "When the last rotation or restore of the container ended, by kind, result and trigger, as Unix seconds (from the journals after a restart).", []string{"container", "kind", "result", "trigger"}}
	RotationSecretLast = Metric{own("rotation_secret_last_timestamp_seconds"), "When the last rotation that deleted the secret (namespace/name) of the container's cluster for its owner to issue anew ended, by result, as Unix seconds (from the journals after a restart).", []string{"container", "secret", "result"}}
	RotationInProgress = Metric{own("rotation_in_progress"), "1 while a rotation or restore of the container runs in this process, by trigger.", []string{"container", "trigger"}}
	AutoRotationNext   = Metric{own("auto_rotation_next_timestamp_seconds"), "When the next automatic rotation of the container runs (or would, with --rotation.auto=plan), as Unix seconds; absent when none is due.", []string{"container"}}
)
