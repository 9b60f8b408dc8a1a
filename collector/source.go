package collector

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/model"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/printable"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// source is one kind of certificate a Rancher container has: its k3s files, the UI certificate,
// its cluster's secrets. Adding one is a file with its source and a line in sources.
type source struct {
	name string
	// cluster: the source reads what Rancher keeps in its cluster (secrets, settings, services),
	// which --no-rancher.secrets turns off. (2.3's listener is read through the same API, but
	// it is k3s's 6443 certificate: always read.)
	cluster bool
	// enabled, when set, decides instead whether the configuration reads the source at all.
	enabled func(cfg DockerConfig) bool
	// reads tells whether the source is read for the container as it is now; a source that is
	// not read reports nothing.
	reads func(cfg DockerConfig, c rancher.Container) bool
	// interval is how long a read is trusted while the container does not start again.
	interval func(cfg DockerConfig) time.Duration
	// timeout bounds one read, detached from any scrape.
	timeout time.Duration
	read    func(ctx context.Context, env readEnv, c rancher.Container) readout
	// keepLastGood: when a read fails, the certificates of the last read that worked are still
	// reported (with the source down), as what the container last showed.
	keepLastGood bool
	// classify gives each certificate it read its role (a source of no certificate has none).
	classify func(c rancher.Container, cf model.CertFile) rancher.Classification
	// reasons are what its reads can fail with (readerr), the counters it starts with.
	reasons []string
}

// on tells whether the exporter's configuration reads the source at all.
func (s source) on(cfg DockerConfig) bool {
	if s.enabled != nil {
		return s.enabled(cfg)
	}
	return !s.cluster || cfg.Secrets
}

// classAs is the classification of a source whose certificates are all of one class.
func classAs(class rancher.Class, rotation rancher.Rotation) func(rancher.Container, model.CertFile) rancher.Classification {
	return func(rancher.Container, model.CertFile) rancher.Classification {
		return rancher.Classification{Class: class, Rotation: rotation}
	}
}

// sources are read for every Rancher container, in this order.
var sources = []source{k3sSource, uiSource, secretSource, listenerSource, settingSource, serviceSource, downstreamSource}

// readEnv is what a read may use.
type readEnv struct {
	engine rancher.Engine
	cfg    DockerConfig
	// urlConflict: --rancher.url is set while several containers are read.
	urlConflict bool
	// kubeconfig reads the container's admin kubeconfig, one read shared by its sources.
	kubeconfig func(ctx context.Context) ([]byte, error)
}

// readout is what one read found: certificate files (each with its certificate or why it could
// not be read), or why the source as a whole could not be read, and at which path.
type readout struct {
	files    []rancher.File
	chain    []*x509.Certificate       // the UI's: the chain served, leaf first
	settings *model.Settings           // the settings source's
	services map[string]string         // the service source's: ClusterIP by namespace/name
	clusters []model.DownstreamCluster // the downstream source's, and its certificates and what failed
	certs    []model.CertFile
	failed   []model.FileError
	path     string // what was read, for an error of the whole source
	err      error
}

// result parses a readout into a source result, through the source's cache of parsed
// certificates.
func (o readout) result(s source, c rancher.Container, cache *certs.Cache) model.SourceResult {
	container, source := c.Name, s.name
	res := model.SourceResult{Container: container, Source: source}
	if o.err != nil {
		res.Errors = []model.FileError{{Container: container, Source: source, Path: o.path, Err: o.err}}
		return res
	}
	res.Up, res.Chain, res.Settings, res.Services, res.Clusters = true, o.chain, o.settings, o.services, o.clusters
	res.Certs, res.Errors = o.certs, o.failed
	for _, f := range o.files {
		addFile(&res, cache, f)
	}
	cache.Sweep()
	for i, cf := range res.Certs {
		res.Certs[i].Class = s.classify(c, cf)
	}
	return res
}

// addFile parses one file into the result: a certificate, an error, or nothing (a file with PEM
// blocks but no certificate, such as a key).
func addFile(res *model.SourceResult, cache *certs.Cache, f rancher.File) {
	err := certs.CheckName(f.Path)
	if err == nil {
		err = f.Err
	}
	var cert *certs.Info
	if err == nil {
		cert, err = cache.Parse(f.Path, f.Data)
	}
	switch {
	case err != nil:
		res.Errors = append(res.Errors, model.FileError{Container: res.Container, Source: res.Source, Path: printable.Escape(f.Path), Err: err})
	case cert != nil:
		res.Certs = append(res.Certs, model.CertFile{Container: res.Container, Source: res.Source, Path: f.Path, Cert: cert})
	}
}
