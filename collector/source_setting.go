package collector

import (
	"context"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

var settingSource = source{
	name:         model.SourceSetting,
	classify:     classAs(rancher.ClassCACerts, rancher.RotationNone),
	cluster:      true,
	reads:        func(DockerConfig, rancher.Container) bool { return true },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readSettings,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads),
}

func readSettings(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: model.CACertsPath, err: err}
	}
	cacerts, err := client.Setting(ctx, "cacerts")
	if err != nil {
		return readout{path: model.CACertsPath, err: err}
	}
	mode, err := client.Setting(ctx, "agent-tls-mode")
	if err != nil {
		return readout{path: "agent-tls-mode", err: err}
	}
	serverURL, err := client.Setting(ctx, "server-url")
	if err != nil {
		return readout{path: "server-url", err: err}
	}
	if !cacerts.Found {
		return readout{} // no settings (yet): nothing agents could be told
	}
	s := &model.Settings{CACerts: cacerts.Effective(), AgentTLSMode: rancher.EffectiveAgentTLSMode(mode.Found, mode.Value, mode.Default), ServerURL: serverURL.Effective()}
	out := readout{settings: s}
	blocks := rancher.CACertsBlocks(s.CACerts)
	for i, b := range blocks {
		out.files = append(out.files, rancher.File{Path: model.CACertPath(i), Data: b})
	}
	if len(blocks) == 0 && rancher.CACertsServed(s.CACerts) != nil {
		out.files = []rancher.File{{Path: model.CACertsPath, Data: []byte(s.CACerts)}} // no certificate: an error
	}
	return out
}
