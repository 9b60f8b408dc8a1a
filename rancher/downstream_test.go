package rancher

import (
	"testing"
	"time"
)

// TestParseExpirationDate: both forms Rancher has written a certificate's expiry in, and what is
// neither.
func TestParseExpirationDate(t *testing.T) {
	want := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	for in, ok := range map[string]bool{
		"2027-03-04T05:06:07Z":          true,
		"2027-03-04T06:06:07+01:00":     true,
		want.String():                   true, // "2027-03-04 05:06:07 +0000 UTC", before rancher#21256
		"2027-03-04 06:06:07 +0100 CET": true,
		"":                              false,
		"next spring":                   false,
		"1741064767":                    false,
	} {
		got, err := ParseExpirationDate(in)
		if ok != (err == nil) || ok && !got.Equal(want) {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
}

func TestRKE1Blocks(t *testing.T) {
	for v, want := range map[string]bool{"v2.11.15": false, "v2.12.0": true, "v2.14.4": true, "": false} {
		if got := ProfileOf(Versions{Rancher: v}).RKE1Blocks(); got != want {
			t.Errorf("%s: %v", v, got)
		}
	}
}
