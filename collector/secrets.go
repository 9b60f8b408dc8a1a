package collector

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// secretTimeout bounds one read of a container's cluster secrets, so that an API server that
// does not answer never holds up the other sources.
const secretTimeout = 5 * time.Second

// readSecrets lists the certificates a running container's embedded cluster keeps as
// secrets, through its own API server with its own admin kubeconfig. Read only: one list.
func (d *dockerSource) readSecrets(ctx context.Context, c rancher.Container, st *containerState) SourceResult {
	start := time.Now()
	res := SourceResult{Container: c.Name, Source: SourceSecret}
	found, err := listSecretCerts(ctx, d.cli, c)
	if err != nil {
		res.Errors = []FileError{{Container: c.Name, Source: SourceSecret, Path: c.APIAddress, Err: err}}
	} else {
		res.Up = true
		cache := st.caches[SourceSecret]
		for _, s := range found {
			addFile(&res, cache, rancher.File{Path: s.Path(), Data: s.Data})
		}
		cache.Sweep()
	}
	res.Duration = time.Since(start)
	d.errs.observe(c.Name+"/secret", res.Errors)
	return res
}

func listSecretCerts(ctx context.Context, eng rancher.Engine, c rancher.Container) ([]cluster.SecretCert, error) {
	switch {
	case c.State != container.StateRunning:
		return nil, readerr.Newf(readerr.APIUnreachable, "container %s is %s: its API server does not run", c.Name, c.State)
	case c.APIAddress == "":
		return nil, readerr.Newf(readerr.APIUnreachable, "container %s has no address on a Docker network", c.Name)
	}
	kubeconfig, err := rancher.ReadKubeconfig(ctx, eng, c.ID)
	if err != nil {
		return nil, err
	}
	client, err := cluster.New(cluster.Options{Kubeconfig: kubeconfig, Address: c.APIAddress, Timeout: secretTimeout})
	if err != nil {
		return nil, err
	}
	return client.Certificates(ctx)
}
