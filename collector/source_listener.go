package collector

import (
	"context"
	"encoding/pem"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

var listenerSource = source{
	name:         model.SourceListener,
	classify:     classAs(rancher.ClassListenerConfig, rancher.RotationAlways),
	reads:        func(_ DockerConfig, c rancher.Container) bool { return c.Profile.ListenerConfig },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readListener,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads),
}

func readListener(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: model.ListenerPath, err: err}
	}
	der, err := client.ListenerCertificate(ctx)
	if err != nil {
		return readout{path: model.ListenerPath, err: err}
	}
	return readout{files: []rancher.File{{Path: model.ListenerPath, Data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}}}
}
