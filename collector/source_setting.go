package collector

import (
	"context"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// SourceSetting is Rancher's settings that decide what downstream agents trust — cacerts,
// agent-tls-mode, server-url — read through the container's own API server like its secrets,
// and kept as last read while that does not answer. The cacerts CA is its certificate.
const SourceSetting = "setting"

// CACertsPath names the cacerts CA in the path label.
const CACertsPath = "cacerts"

var settingSource = source{
	name:         SourceSetting,
	reads:        func(cfg DockerConfig, _ rancher.Container) bool { return cfg.Secrets },
	interval:     func(cfg DockerConfig) time.Duration { return cfg.RefreshInterval },
	timeout:      secretTimeout,
	read:         readSettings,
	keepLastGood: true,
	reasons:      readerr.Of(readerr.EngineReads, readerr.APIReads),
}

func readSettings(ctx context.Context, env readEnv, c rancher.Container) readout {
	client, err := clusterClient(ctx, env, c)
	if err != nil {
		return readout{path: CACertsPath, err: err}
	}
	cacerts, err := client.Setting(ctx, "cacerts")
	if err != nil {
		return readout{path: CACertsPath, err: err}
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
	s := &Settings{CACerts: cacerts.Effective(), AgentTLSMode: rancher.EffectiveAgentTLSMode(mode.Found, mode.Value, mode.Default), ServerURL: serverURL.Effective()}
	out := readout{settings: s}
	if rancher.CACertsServed(s.CACerts) != nil {
		out.files = []rancher.File{{Path: CACertsPath, Data: []byte(s.CACerts)}}
	}
	return out
}
