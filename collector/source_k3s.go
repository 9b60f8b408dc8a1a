package collector

import (
	"context"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// SourceK3s is k3s's certificate files in the container, read through the archive endpoint:
// running, crash-looping or stopped alike.
const SourceK3s = "k3s"

// treeTimeout bounds one read of a container's certificate tree.
const treeTimeout = 30 * time.Second

var k3sSource = source{
	name:     SourceK3s,
	reads:    func(DockerConfig, rancher.Container) bool { return true },
	interval: func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:  treeTimeout,
	classify: func(c rancher.Container, cf CertFile) rancher.Classification {
		return c.Profile.Classify(cf.Path, cf.Cert.IsCA)
	},
	reasons: readerr.Of(readerr.EngineReads, readerr.FileReads, readerr.ArchiveReads),
	read: func(ctx context.Context, env readEnv, c rancher.Container) readout {
		files, err := rancher.ReadTree(ctx, env.engine, c.ID, c.Profile.Locations)
		return readout{files: files, path: rancher.ServerTLSDir, err: err}
	},
}
