package collector

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

var serviceSource = source{
	name:         model.SourceService,
	classify:     classAs(rancher.ClassOther, rancher.RotationNone), // it reads no certificate
	cluster:      true,
	reads:        func(_ DockerConfig, c rancher.Container) bool { return c.State == container.StateRunning },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readServices,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads),
}

func readServices(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: c.APIAddress, err: err}
	}
	found := map[string]string{}
	for _, key := range rancher.NamedServices {
		ip, ok, err := client.ServiceIP(ctx, key.Namespace, key.Name)
		if err != nil {
			return readout{path: key.String(), err: err}
		}
		if ok && ip != "" {
			found[key.String()] = ip
		}
	}
	return readout{services: found}
}
