package main

import (
	"crypto/tls"
	"errors"
	"os"
	"slices"
	"strings"
)

// What an operator mounts to bring their own certificate (Rancher's single-node install options
// B and C), and the argument of option C (a certificate of a recognised CA); rancher/rancher
// v2.9.0 pkg/tls/tls.go:39-41, main.go:111.
const (
	customCertFile    = "/etc/rancher/ssl/cert.pem"
	customKeyFile     = "/etc/rancher/ssl/key.pem"
	customCACertsFile = "/etc/rancher/ssl/cacerts.pem"
	noCACertsArg      = "--no-cacerts"
)

// errSSLConfig is Rancher's start error for a combination it refuses (v2.9.0
// pkg/tls/tls.go:269-271, 284-286, 300-304; the same checks in v2.5.7 pkg/tls/tls.go:219).
var errSSLConfig = errors.New("invalid SSL configuration found, please set cacerts when using self signed certificates or use --no-cacerts when using certificates from a recognized Certificate Authority, do not use both at the same time")

// sslConfig is what Rancher makes of the mounted files and --no-cacerts at start
// (readConfig, v2.9.0 pkg/tls/tls.go:220-313).
type sslConfig struct {
	custom    *tls.Certificate // the operator's certificate, served as mounted
	caFile    string           // the mounted cacerts.pem, when there is one
	noCACerts bool
}

func readSSLConfig(args []string) (sslConfig, error) {
	cfg := sslConfig{noCACerts: slices.Contains(args, noCACertsArg)}
	certExists, keyExists, caExists := exists(customCertFile), exists(customKeyFile), exists(customCACertsFile)
	if certExists != keyExists {
		return cfg, errors.New("invalid SSL configuration found, please set both certificate file and certificate key file (one is missing)")
	}
	// A mounted certificate needs exactly one of cacerts.pem and --no-cacerts; a mounted
	// cacerts.pem alone (external TLS termination) does not go with --no-cacerts.
	if certExists && caExists == cfg.noCACerts || !certExists && caExists && cfg.noCACerts {
		return cfg, errSSLConfig
	}
	if certExists {
		c, err := tls.LoadX509KeyPair(customCertFile, customKeyFile)
		if err != nil {
			return cfg, err
		}
		cfg.custom = &c
	}
	if caExists {
		data, err := os.ReadFile(customCACertsFile)
		if err != nil {
			return cfg, err
		}
		cfg.caFile = string(data)
	}
	return cfg, nil
}

// cacerts is the value Rancher stores in the cacerts setting: empty with --no-cacerts, the
// mounted CA, else its own cattle-ca, trimmed (SetupListener, v2.9.0 pkg/tls/tls.go:198-213).
func (c sslConfig) cacerts(cattleCA string) string {
	switch {
	case c.noCACerts:
		return ""
	case c.caFile != "":
		return trimSpace(c.caFile)
	}
	return trimSpace(cattleCA)
}

func trimSpace(s string) string { return strings.TrimSpace(s) }

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}
