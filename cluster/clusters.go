package cluster

import (
	"context"
	"encoding/json"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// Downstream is what the exporter reads of a cluster the Rancher server manages
// (clusters.management.cattle.io/v3: rancher/rancher pkg/apis/management.cattle.io/v3/cluster_types.go;
// v2.3.5 vendor/github.com/rancher/types/…/cluster_types.go). Only these fields are decoded: the
// object also holds credentials (status.serviceAccountToken, caCert, the RKE1 configuration),
// which are never decoded, kept or logged.
type Downstream struct {
	ID          string
	DisplayName string
	Internal    bool // the server's own cluster, local
	RKE1        bool // spec.rancherKubernetesEngineConfig is set
	Driver      string
	Provider    string // from 2.5
	Version     string // status.version.gitVersion
	Conditions  []Condition
	// Certificates are status.certificatesExpiration: each certificate's expiry as Rancher wrote
	// it (RFC 3339, or time.String() on objects from before 2019), by rke's name. RKE1 only.
	Certificates map[string]string
}

// Condition is one of a cluster's conditions.
type Condition struct {
	Type, Status, LastUpdateTime, Reason, Message string
}

// Condition finds a condition by type.
func (d Downstream) Condition(typ string) (Condition, bool) {
	for _, c := range d.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// clusterObject is the part of a v3 Cluster that is decoded; encoding/json skips the rest.
type clusterObject struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		DisplayName string    `json:"displayName"`
		Internal    bool      `json:"internal"`
		RKE         *struct{} `json:"rancherKubernetesEngineConfig"` // presence only: it holds keys
	} `json:"spec"`
	Status struct {
		Driver   string `json:"driver"`
		Provider string `json:"provider"`
		Version  *struct {
			GitVersion string `json:"gitVersion"`
		} `json:"version"`
		Conditions []struct {
			Type           string `json:"type"`
			Status         string `json:"status"`
			LastUpdateTime string `json:"lastUpdateTime"`
			Reason         string `json:"reason"`
			Message        string `json:"message"`
		} `json:"conditions"`
		CertificatesExpiration map[string]struct {
			ExpirationDate string `json:"expirationDate"`
		} `json:"certificatesExpiration"`
	} `json:"status"`
}

type clusterList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []clusterObject `json:"items"`
}

// Clusters lists the clusters the server manages, page by page, at most max of them: more is
// too_large. A release without the resource has none.
func (c *Client) Clusters(ctx context.Context, max int) ([]Downstream, error) {
	var out []Downstream
	for cont := ""; ; {
		req := c.rc.Get().AbsPath("/apis/management.cattle.io/v3/clusters").Param("limit", strconv.Itoa(pageSize))
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.DoRaw(ctx)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, classify("list clusters.management.cattle.io", err)
		}
		var list clusterList
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, readerr.Newf(readerr.ParseError, "clusters.management.cattle.io: %v", err)
		}
		for _, o := range list.Items {
			out = append(out, downstreamOf(o))
		}
		if len(out) > max {
			return nil, readerr.Newf(readerr.TooLarge, "the server manages more than %d clusters", max)
		}
		if cont = list.Metadata.Continue; cont == "" {
			return out, nil
		}
	}
}

func downstreamOf(o clusterObject) Downstream {
	d := Downstream{ID: o.Metadata.Name, DisplayName: o.Spec.DisplayName, Internal: o.Spec.Internal, RKE1: o.Spec.RKE != nil,
		Driver: o.Status.Driver, Provider: o.Status.Provider}
	if o.Status.Version != nil {
		d.Version = o.Status.Version.GitVersion
	}
	for _, c := range o.Status.Conditions {
		d.Conditions = append(d.Conditions, Condition{c.Type, c.Status, c.LastUpdateTime, c.Reason, c.Message})
	}
	if len(o.Status.CertificatesExpiration) > 0 {
		d.Certificates = map[string]string{}
		for name, e := range o.Status.CertificatesExpiration {
			d.Certificates[name] = e.ExpirationDate
		}
	}
	return d
}
