package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// SourceSetting is Rancher's settings that decide what downstream agents trust — cacerts,
// agent-tls-mode, server-url — read through the container's own API server like its secrets,
// and kept as last read while that does not answer. The cacerts CA is its certificate.
const SourceSetting = "setting"

// CACertsPath names the cacerts setting in the path label: each of its certificates is
// CACertPath of its position, a value with none is CACertsPath.
const CACertsPath = "cacerts"

// CACertPath names the i-th certificate (from 0) of the cacerts setting: cacerts#1 is the first.
func CACertPath(i int) string { return fmt.Sprintf("%s#%d", CACertsPath, i+1) }

var settingSource = source{
	name:         SourceSetting,
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
	blocks := rancher.CACertsBlocks(s.CACerts)
	for i, b := range blocks {
		out.files = append(out.files, rancher.File{Path: CACertPath(i), Data: b})
	}
	if len(blocks) == 0 && rancher.CACertsServed(s.CACerts) != nil {
		out.files = []rancher.File{{Path: CACertsPath, Data: []byte(s.CACerts)}} // no certificate: an error
	}
	return out
}
