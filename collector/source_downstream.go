package collector

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// maxClusters bounds one read: a server managing more is too_large.
const maxClusters = 2000

var downstreamSource = source{
	name:         model.SourceDownstream,
	classify:     classAs(rancher.ClassDownstream, rancher.RotationNone),
	enabled:      func(cfg DockerConfig) bool { return cfg.Downstream },
	reads:        func(_ DockerConfig, c rancher.Container) bool { return c.State == container.StateRunning },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readDownstream,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads, []string{readerr.InvalidDate}),
}

func readDownstream(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: c.APIAddress, err: err}
	}
	all, err := client.Clusters(ctx, maxClusters)
	if err != nil {
		return readout{path: "clusters.management.cattle.io", err: err}
	}
	out := readout{clusters: []model.DownstreamCluster{}}
	for _, d := range all {
		if d.Internal {
			continue // the server's own, local: its certificates are what the other sources read
		}
		out.clusters = append(out.clusters, downstreamOf(d))
		for name, date := range d.Certificates {
			path := d.ID + "/" + name
			notAfter, err := rancher.ParseExpirationDate(date)
			if err != nil {
				out.failed = append(out.failed, model.FileError{Container: c.Name, Source: model.SourceDownstream, Path: path,
					Err: readerr.Newf(readerr.InvalidDate, "cluster %s: certificate %s expires %q, which is no date: %v", d.ID, name, date, err)})
				continue
			}
			out.certs = append(out.certs, model.CertFile{Container: c.Name, Source: model.SourceDownstream, Path: path,
				Cert: &certs.Info{NotAfter: notAfter, IsCA: name == rancher.RKE1CA}})
		}
	}
	return out
}

func downstreamOf(d cluster.Downstream) model.DownstreamCluster {
	out := model.DownstreamCluster{ID: d.ID, DisplayName: d.DisplayName, Driver: d.Driver, Provider: d.Provider, KubernetesVersion: d.Version, RKE1: d.RKE1}
	cond, ok := d.Condition("Connected")
	if !ok {
		cond, _ = d.Condition("Ready")
	}
	out.Connected = cond.Status == "True"
	out.Since, _ = time.Parse(time.RFC3339, cond.LastUpdateTime)
	return out
}
