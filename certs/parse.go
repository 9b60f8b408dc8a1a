// Package certs finds the certificate a file stands for: the first certificate in a PEM
// file (what `openssl x509 -enddate` reads) or the tls.crt of a dynamiclistener cache.
package certs

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"path"
	"unicode/utf8"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/printable"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// MaxFileSize bounds what is read of one file; certificate files are a few KiB.
const MaxFileSize = 1 << 20

// CheckSize refuses a file over MaxFileSize; readers call it before reading the bytes.
func CheckSize(name string, size int64) error {
	if size > MaxFileSize {
		return readerr.Newf(readerr.TooLarge, "%s is %d bytes, over %d", name, size, MaxFileSize)
	}
	return nil
}

// CheckName refuses a file name that cannot be a label value: one that is not valid UTF-8 would
// make Prometheus reject the whole scrape. The error names the file escaped.
func CheckName(name string) error {
	if !utf8.ValidString(name) {
		return readerr.Newf(readerr.InvalidName, "the file name %s is not valid UTF-8, so it cannot be a label value: rename the file", printable.Escape(name))
	}
	return nil
}

// DynamicCertFile is rancher/dynamiclistener's listener cache: a JSON Kubernetes Secret.
const DynamicCertFile = "dynamic-cert.json"

// IsCandidate tells whether a file name is one that may hold a certificate.
func IsCandidate(name string) bool {
	base := path.Base(name)
	switch path.Ext(base) {
	case ".crt", ".pem":
		return true
	}
	return base == DynamicCertFile
}

// Parse returns the first certificate of a file. It returns (nil, nil) for a file that holds
// PEM blocks but no certificate (a key), and a readerr.Error for anything unusable.
func Parse(name string, data []byte) (*x509.Certificate, error) {
	if len(data) == 0 {
		return nil, readerr.Newf(readerr.Empty, "%s is empty", name)
	}
	if err := CheckSize(name, int64(len(data))); err != nil {
		return nil, err
	}
	if path.Base(name) == DynamicCertFile {
		return parseSecret(name, data)
	}
	return parsePEM(name, data)
}

func parsePEM(name string, data []byte) (*x509.Certificate, error) {
	blocks, sawPEM := Blocks(data)
	if !sawPEM {
		return nil, readerr.Newf(readerr.NoCertificate, "%s holds no PEM data", name)
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	cert, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "%s: %v", name, err)
	}
	return cert, nil
}

// Blocks are the CERTIFICATE blocks of PEM data, in order; sawPEM tells whether it held a PEM
// block of any type.
func Blocks(data []byte) (found []*pem.Block, sawPEM bool) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return found, sawPEM
		}
		sawPEM = true
		if block.Type == "CERTIFICATE" {
			found = append(found, block)
		}
	}
}

// secret is the part of a Kubernetes Secret that dynamiclistener writes; encoding/json
// decodes the base64 of []byte values.
type secret struct {
	Data map[string][]byte `json:"data"`
}

func parseSecret(name string, data []byte) (*x509.Certificate, error) {
	var s secret
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, readerr.Newf(readerr.ParseError, "%s: %v", name, err)
	}
	crt, ok := s.Data["tls.crt"]
	if !ok {
		return nil, readerr.Newf(readerr.NoCertificate, "%s has no data[\"tls.crt\"]", name)
	}
	return parsePEM(name+`#data["tls.crt"]`, crt)
}
