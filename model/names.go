package model

import (
	"github.com/rancher-cert-exporter/rancher-cert-exporter/rancher"
)

// NameCheck is whether a certificate whose use the exporter knows covers the names its clients
// reach it by.
type NameCheck struct {
	Container, Source, Path string
	Names                   []rancher.Name // what it must cover
	Missing                 []rancher.Name // of those, what it does not
}

// Covered tells whether the certificate covers every name.
func (n NameCheck) Covered() bool { return len(n.Missing) == 0 }

// NamesOf checks the container's certificates whose clients the exporter knows: 6443's (the
// listener cache, or 2.3's ListenerConfig) against the kubeconfig's host, localhost and the
// kubernetes Service; the internal listener's against the rancher-internal Service; the UI's
// against the host of server-url. A certificate not read, or a Service whose address is not
// known, checks nothing.
func NamesOf(s Snapshot, c rancher.Container) []NameCheck {
	var services map[string]string
	var serverURL string
	for _, r := range s.Sources {
		switch {
		case r.Container != c.Name:
		case r.Source == SourceService:
			services = r.Services
		case r.Source == SourceSetting && r.Settings != nil:
			serverURL = r.Settings.ServerURL
		}
	}
	var out []NameCheck
	for _, r := range s.Sources {
		if r.Container != c.Name {
			continue
		}
		for _, cf := range r.Certs {
			var names []rancher.Name
			switch {
			case cf.Class.Class.Serves6443():
				names = c.Profile.ListenerNames(services[rancher.KubernetesService.String()])
			case cf.Class.Class == rancher.ClassInCluster && cf.Path == rancher.InternalCertSecret:
				names = rancher.InternalNames(services[rancher.InternalService.String()])
			case cf.Class.Class == rancher.ClassUI:
				names = rancher.UINames(serverURL)
			}
			if len(names) == 0 {
				continue
			}
			check := NameCheck{Container: c.Name, Source: cf.Source, Path: cf.Path, Names: names}
			for _, n := range names {
				if !cf.Cert.Covers(n.Name) {
					check.Missing = append(check.Missing, n)
				}
			}
			out = append(out, check)
		}
	}
	return out
}
