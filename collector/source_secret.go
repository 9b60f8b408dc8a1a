package collector

import (
	"context"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// secretTimeout bounds one read of a container's cluster secrets, so that an API server that
// does not answer never holds up the other sources.
const secretTimeout = 5 * time.Second

var secretSource = source{
	name: model.SourceSecret,
	classify: func(c rancher.Container, cf model.CertFile) rancher.Classification {
		return c.Profile.ClassifySecret(cf.Path)
	},
	cluster:  true,
	reads:    func(DockerConfig, rancher.Container) bool { return true },
	interval: func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:  secretTimeout,
	read:     readSecrets,
	reasons:  readerr.Of(readerr.EngineReads, readerr.APIReads),
}

// readSecrets lists the certificates a running container's embedded cluster keeps as
// secrets, through its own API server with its own admin kubeconfig. Read only: one list.
func readSecrets(ctx context.Context, env readEnv, c rancher.Container) readout {
	found, err := listSecretCerts(ctx, env, c)
	if err != nil {
		return readout{path: c.APIAddress, err: err}
	}
	files := make([]rancher.File, len(found))
	for i, s := range found {
		files[i] = rancher.File{Path: s.Path(), Data: s.Data}
	}
	return readout{files: files}
}

func listSecretCerts(ctx context.Context, env readEnv, c rancher.Container) ([]cluster.SecretCert, error) {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return nil, err
	}
	return client.Certificates(ctx)
}

// clusterClient connects to a running container's own API server with its admin kubeconfig.
func clusterClient(ctx context.Context, env readEnv, c rancher.Container) (*cluster.Client, error) {
	return rancher.API(ctx, env.engine, c, rancher.APIOptions{Timeout: secretTimeout, Kubeconfig: env.kubeconfig})
}
