package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// clusterStoreFile keeps the clusters the server manages (clusters.management.cattle.io, Rancher's
// own objects in its cluster) with, for the simulation, each downstream cluster's agent.
const clusterStoreFile = "k3s/server/db/clusters.json"

// v3Cluster is a clusters.management.cattle.io/v3 object in the fields Rancher's API has
// (rancher/rancher pkg/apis/management.cattle.io/v3/cluster_types.go; v2.3.5 in
// vendor/github.com/rancher/types): spec.displayName and internal (the local cluster),
// spec.rancherKubernetesEngineConfig (RKE1); status.driver, status.provider (from 2.5), the
// Kubernetes version, conditions, certificatesExpiration (RKE1 only) — and the credentials
// Rancher keeps there (status.serviceAccountToken, caCert), which a reader must never decode.
type v3Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		DisplayName string          `json:"displayName"`
		Internal    bool            `json:"internal"`
		RKE         json.RawMessage `json:"rancherKubernetesEngineConfig,omitempty"`
	} `json:"spec"`
	Status struct {
		Conditions             []clusterCondition        `json:"conditions,omitempty"`
		Driver                 string                    `json:"driver"`
		Provider               string                    `json:"provider,omitempty"`
		APIEndpoint            string                    `json:"apiEndpoint,omitempty"`
		ServiceAccountToken    string                    `json:"serviceAccountToken,omitempty"`
		CACert                 string                    `json:"caCert,omitempty"`
		Version                *versionInfo              `json:"version,omitempty"`
		CertificatesExpiration map[string]certExpiration `json:"certificatesExpiration,omitempty"`
	} `json:"status"`
}

type clusterCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastUpdateTime     string `json:"lastUpdateTime,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

type versionInfo struct {
	GitVersion string `json:"gitVersion"`
}

type certExpiration struct {
	ExpirationDate string `json:"expirationDate,omitempty"`
}

// simCluster is a cluster as the simulator keeps it: Rancher's object, and the downstream
// agent's side, which Rancher only sees through its tunnel.
type simCluster struct {
	Object v3Cluster `json:"object"`
	Agent  struct {
		Online bool `json:"online"`
		// Checksum is the CATTLE_CA_CHECKSUM the agent was registered with: it refuses a server
		// whose /cacerts hashes otherwise ("Configured cacerts checksum (…) does not match").
		Checksum string `json:"checksum,omitempty"`
	} `json:"agent"`
}

// clusterStore is the clusters, shared by the server and `ranchersim cluster` run in the
// container (docker exec): each change holds an flock on the file.
type clusterStore struct{ file string }

func (s clusterStore) update(fn func(all map[string]*simCluster) error) error {
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(s.file+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	all, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(all); err != nil {
		return err
	}
	data, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return writeFile(s.file, data, 0o600)
}

func (s clusterStore) load() (map[string]*simCluster, error) {
	all := map[string]*simCluster{}
	data, err := os.ReadFile(s.file)
	if errors.Is(err, fs.ErrNotExist) {
		return all, nil
	}
	if err != nil {
		return nil, err
	}
	return all, json.Unmarshal(data, &all)
}

// list returns the objects, by name.
func (s clusterStore) list() ([]v3Cluster, error) {
	var out []v3Cluster
	err := s.update(func(all map[string]*simCluster) error {
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, all[n].Object)
		}
		return nil
	})
	return out, err
}

// newCluster is a cluster object of this release's era, with the credentials Rancher keeps in it.
func newCluster(id, displayName, driver, provider, k8s string, internal bool) *simCluster {
	c := &simCluster{}
	o := &c.Object
	o.TypeMeta = metav1.TypeMeta{Kind: "Cluster", APIVersion: "management.cattle.io/v3"}
	o.ObjectMeta = metav1.ObjectMeta{Name: id, UID: newUID(), CreationTimestamp: metav1.Now(), ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10)}
	o.Spec.DisplayName, o.Spec.Internal = displayName, internal
	o.Status.Driver = driver
	if atLeast(2, 5) { // status.provider: rancher/rancher v2.5.7 cluster_types.go, not v2.4.8's
		o.Status.Provider = provider
	}
	if k8s != "" {
		o.Status.Version = &versionInfo{GitVersion: k8s}
	}
	if !internal {
		token := make([]byte, 48)
		rand.Read(token)
		o.Status.ServiceAccountToken = "eyJhbGciOiJSUzI1NiJ9." + hex.EncodeToString(token) // a credential: never to be read back
		o.Status.CACert = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"
		o.Status.APIEndpoint = "https://10.0.0.10:6443"
	}
	o.Status.Conditions = []clusterCondition{{Type: "Ready", Status: "True", LastUpdateTime: time.Now().UTC().Format(time.RFC3339)}}
	c.Agent.Online = true
	return c
}

// ensureLocalCluster creates the local cluster, the server's own (spec.internal), at the install.
func (k *k3s) ensureLocalCluster() error {
	return k.clusters.update(func(all map[string]*simCluster) error {
		if _, ok := all["local"]; !ok {
			all["local"] = newCluster("local", "local", "local", "k3s", "", true)
		}
		return nil
	})
}

// checkAgents sets the conditions of every downstream cluster as Rancher's controllers do, from
// whether its agent is connected: online, and trusting the server (its pinned checksum is what
// /cacerts hashes to now). From 2.6 the clusterconnected controller sets Connected every 15 s
// (v2.6.0 pkg/controllers/management/clusterconnected/clusterconnected.go:29-37, 87-120), and
// from 2.7 also Ready False, reason Disconnected, "Cluster agent is not connected" (v2.9.0
// clusterconnected.go:109-121; commit f82c084c, first in v2.7.0). Before 2.6 there is no Connected;
// the health syncer sets Ready False, reason ComponentStatsFetchingFailure (v2.3.5
// pkg/controllers/user/healthsyncer/healthsyncer.go:71-76).
func (k *k3s) checkAgents(checksum string, now time.Time) error {
	return k.clusters.update(func(all map[string]*simCluster) error {
		for _, c := range all {
			if c.Object.Spec.Internal {
				continue
			}
			connected := c.Agent.Online && (c.Agent.Checksum == "" || c.Agent.Checksum == checksum)
			if atLeast(2, 6) {
				setCondition(&c.Object, "Connected", connected, "", "", now)
			}
			switch {
			case connected:
				setCondition(&c.Object, "Ready", true, "", "", now)
			case atLeast(2, 7):
				setCondition(&c.Object, "Ready", false, "Disconnected", "Cluster agent is not connected", now)
			case !atLeast(2, 6):
				setCondition(&c.Object, "Ready", false, "ComponentStatsFetchingFailure", "Failed to communicate with API server: the cluster agent is not connected", now)
			}
		}
		return nil
	})
}

// setCondition sets a condition's status, with its update time when it changes (wrangler's
// condition package keeps lastUpdateTime otherwise).
func setCondition(o *v3Cluster, typ string, value bool, reason, message string, now time.Time) {
	status := "False"
	if value {
		status = "True"
	}
	for i := range o.Status.Conditions {
		c := &o.Status.Conditions[i]
		if c.Type != typ {
			continue
		}
		if c.Status != status {
			c.Status, c.LastUpdateTime, c.LastTransitionTime = status, now.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)
		}
		c.Reason, c.Message = reason, message
		return
	}
	o.Status.Conditions = append(o.Status.Conditions, clusterCondition{Type: typ, Status: status, Reason: reason, Message: message,
		LastUpdateTime: now.UTC().Format(time.RFC3339), LastTransitionTime: now.UTC().Format(time.RFC3339)})
}

// rkeCertNames are the certificates rke keeps for an RKE1 cluster that Rancher reports in
// certificatesExpiration: rke's pki names (pki/constants.go), less the client, token, header and
// admin ones (v2.3.5 pkg/controllers/user/certsexpiration/certsexpiration.go:136-145), with
// kube-etcd-<node IP, dashes for dots> per etcd node.
var rkeCertNames = []string{"kube-ca", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kube-node"}

// expirationDate is how Rancher writes a certificate's expiry: RFC 3339 (since rancher#21256,
// 2019: v2.3.5 certsexpiration.go:156-162), time.String() before, as clusters carried over from
// then may still hold.
func expirationDate(t time.Time, old bool) string {
	if old {
		return t.UTC().String()
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *api) listClusters(w http.ResponseWriter, r *http.Request) {
	all, err := a.clusters.list()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("continue"))
	start = min(start, len(all))
	items := all[start:]
	list := map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "ClusterList",
		"metadata": metav1.ListMeta{ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10)}}
	if limit, _ := strconv.Atoi(r.URL.Query().Get("limit")); limit > 0 && limit < len(items) {
		remaining := int64(len(items) - limit)
		items = items[:limit]
		list["metadata"] = metav1.ListMeta{ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10), Continue: strconv.Itoa(start + limit), RemainingItemCount: &remaining}
	}
	if items == nil {
		items = []v3Cluster{}
	}
	list["items"] = items
	writeJSON(w, http.StatusOK, list)
}

func (a *api) getCluster(w http.ResponseWriter, r *http.Request) {
	all, err := a.clusters.list()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	for _, c := range all {
		if c.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("clusters.management.cattle.io %q not found", r.PathValue("name")))
}
