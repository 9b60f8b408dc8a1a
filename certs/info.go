package certs

import (
	"crypto/x509"
	"net"
	"time"
)

// Info is what the exporter reports of a certificate. Sources keep Info rather than the
// parsed certificate: a host with 10,000 files then holds kilobytes less per file.
type Info struct {
	SubjectCN, IssuerCN string
	Serial              string // decimal
	IsCA                bool
	NotBefore, NotAfter time.Time
	// SANs are the names (DNS names and IP addresses, as text) a serving certificate is valid
	// for; nil for the others.
	SANs []string
}

// Covers tells whether the certificate is valid for a host name or IP address, as a TLS client
// checks it.
func (i *Info) Covers(host string) bool {
	var c x509.Certificate
	for _, n := range i.SANs {
		if ip := net.ParseIP(n); ip != nil {
			c.IPAddresses = append(c.IPAddresses, ip)
		} else {
			c.DNSNames = append(c.DNSNames, n)
		}
	}
	return c.VerifyHostname(host) == nil
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
	info.SANs = append(info.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		info.SANs = append(info.SANs, ip.String())
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
