package cluster

import (
	"context"
	"encoding/json"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Setting is one of Rancher's settings (settings.management.cattle.io/v3, cluster-scoped): the
// value set, and the default that holds while it is empty.
type Setting struct {
	Value   string `json:"value"`
	Default string `json:"default"`
	Found   bool   `json:"-"` // false: the release has no such setting, or Rancher has not created it
}

// Effective is the value Rancher uses: the value, else the default.
func (s Setting) Effective() string {
	if s.Value != "" {
		return s.Value
	}
	return s.Default
}

// Setting reads one of Rancher's settings. A setting the cluster does not hold (a release
// without it, or a Rancher not started far enough to create it) is no error: Found is false.
func (c *Client) Setting(ctx context.Context, name string) (Setting, error) {
	body, err := c.rc.Get().AbsPath("/apis/management.cattle.io/v3/settings/" + name).DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return Setting{}, nil
	}
	if err != nil {
		return Setting{}, classify("get setting "+name, err)
	}
	var s Setting
	if err := json.Unmarshal(body, &s); err != nil {
		return Setting{}, readerr.Newf(readerr.ParseError, "setting %s: %v", name, err)
	}
	s.Found = true
	return s, nil
}
