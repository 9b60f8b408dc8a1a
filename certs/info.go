package certs

import (
	"crypto/x509"
	"time"
)

// Info is what the exporter reports of a certificate. Sources keep Info rather than the
// parsed certificate: a host with 10,000 files then holds kilobytes less per file.
type Info struct {
	SubjectCN, IssuerCN string
	Serial              string // decimal
	IsCA                bool
	NotBefore, NotAfter time.Time
}

// InfoOf extracts the reported fields of a certificate.
func InfoOf(c *x509.Certificate) *Info {
	info := &Info{
		SubjectCN: c.Subject.CommonName,
		IssuerCN:  c.Issuer.CommonName,
		IsCA:      c.IsCA,
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
	}
	if c.SerialNumber != nil {
		info.Serial = c.SerialNumber.String()
	}
	return info
}

// ParseInfo is Parse returning only the reported fields.
func ParseInfo(name string, data []byte) (*Info, error) {
	cert, err := Parse(name, data)
	if cert == nil {
		return nil, err
	}
	return InfoOf(cert), nil
}
