package collector

import (
	"context"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// treeTimeout bounds one read of a container's certificate tree.
const treeTimeout = 30 * time.Second

var k3sSource = source{
	name:     model.SourceK3s,
	reads:    func(DockerConfig, rancher.Container) bool { return true },
	interval: func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:  treeTimeout,
	classify: func(c rancher.Container, cf model.CertFile) rancher.Classification {
		return c.Profile.Classify(cf.Path, cf.Cert.IsCA)
	},
	reasons: readerr.Of(readerr.EngineReads, readerr.FileReads, readerr.ArchiveReads),
	read: func(ctx context.Context, env readEnv, c rancher.Container) readout {
		files, err := rancher.ReadTree(ctx, env.engine, c.ID, c.Profile.Locations)
		return readout{files: files, path: rancher.ServerTLSDir, err: err}
	},
}
