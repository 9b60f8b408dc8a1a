package rancher

import (
	"fmt"
	"time"
)

// RKE1CA is the CA of an RKE1 cluster in its certificatesExpiration (rke pki/constants.go CACertName).
const RKE1CA = "kube-ca"

// ParseExpirationDate reads a certificate's expiry as Rancher writes it in a cluster's
// certificatesExpiration: RFC 3339 since rancher#21256 (2019; v2.3.5
// pkg/controllers/user/certsexpiration/certsexpiration.go:156-162), Go's time.String() before,
// which objects from then may still hold.
func ParseExpirationDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("neither RFC 3339 nor Go's time format")
}

// RKE1Blocks tells whether a release refuses to start while the server manages an RKE1
// cluster: 2.12 and later (rancher/rancher v2.12.0 pkg/rancher/rancher.go:172-175, 788-798,
// validateRKE1Resources).
func (p Profile) RKE1Blocks() bool {
	r, ok := parseRelease(p.Rancher)
	return ok && r.atLeast(release{2, 12, 0})
}
