package collector

import (
	"context"
	"encoding/pem"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/cluster"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// SourceListener is the 6443 certificate Rancher 2.3's k3s keeps in its ListenerConfig, not in a
// file: read through the container's own API server while it runs, and reported as last read
// while it does not answer (a crash loop), since that is when it matters.
const SourceListener = "listener"

var listenerSource = source{
	name:         SourceListener,
	reads:        func(_ DockerConfig, c rancher.Container) bool { return c.Profile.ListenerConfig },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readListener,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads),
}

// ListenerPath names the listener's certificate in the path label: its object.
var ListenerPath = cluster.ListenerConfig.Namespace + "/" + cluster.ListenerConfig.Name

func readListener(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: ListenerPath, err: err}
	}
	der, err := client.ListenerCertificate(ctx)
	if err != nil {
		return readout{path: ListenerPath, err: err}
	}
	return readout{files: []rancher.File{{Path: ListenerPath, Data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}}}
}
