package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceStoreFile keeps the cluster's Services beside its secrets, so that a ClusterIP survives
// restarts and upgrades as in the datastore.
const serviceStoreFile = "k3s/server/db/services.json"

// The Services whose addresses certificates must cover: kubernetes, which k3s creates at the
// first address of its service CIDR (10.43.0.0/16, so 10.43.0.1); and what Rancher creates for a
// Docker install (setupRancherService, rancher/rancher v2.6.0 pkg/rancher/rancher.go:312):
// cattle-system/rancher, and from 2.14 cattle-system/rancher-internal, the internal listener's
// (v2.14.0 pkg/rancher/rancher.go:722-781, pkg/controllers/dashboard/apiservice/setting.go:15).
const (
	kubernetesService = "default/kubernetes"
	rancherService    = "cattle-system/rancher"
	internalService   = "cattle-system/rancher-internal"
)

type service = corev1.Service

type serviceStore struct{ objectStore[service] }

// ensure creates the Services this release has, each with a ClusterIP of its own; existing ones
// keep theirs.
func (s *serviceStore) ensure(keys ...string) error {
	return s.update(func(all map[string]corev1.Service) (bool, error) {
		changed := false
		for _, key := range keys {
			if _, ok := all[key]; ok {
				continue
			}
			ns, name, _ := cut(key)
			ip := "10.43.0.1"
			if key != kubernetesService {
				b := make([]byte, 2)
				rand.Read(b)
				ip = fmt.Sprintf("10.43.%d.%d", 1+int(b[0])%254, 1+int(b[1])%254)
			}
			all[key] = corev1.Service{TypeMeta: metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: newUID(), CreationTimestamp: metav1.Now(),
					ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10)},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
					Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 443}}}}
			changed = true
		}
		return changed, nil
	})
}

func cut(key string) (ns, name string, ok bool) {
	for i := range key {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return "", key, false
}

// ensureServices creates the release's Services at start, as k3s and Rancher do.
func (k *k3s) ensureServices() error {
	keys := []string{kubernetesService}
	if atLeast(2, 6) {
		keys = append(keys, rancherService)
	}
	if atLeast(2, 14) {
		keys = append(keys, internalService)
	}
	return k.services.ensure(keys...)
}

// internalIP is the ClusterIP the internal listener's certificate is issued for: the rancher
// Service's up to 2.13 (v2.13.8 pkg/tls/tls.go:117, getClusterIP of "rancher"), rancher-internal's
// from 2.14 (v2.14.0 pkg/tls/tls.go:351-367); none before Rancher created Services.
func (k *k3s) internalIP() net.IP {
	key := rancherService
	if atLeast(2, 14) {
		key = internalService
	}
	if svc, ok := k.services.get(key); ok {
		return net.ParseIP(svc.Spec.ClusterIP)
	}
	return nil
}

func (a *api) listServices(w http.ResponseWriter, r *http.Request) {
	all, err := a.services.list()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	items := []corev1.Service{}
	for _, s := range all {
		if ns := r.PathValue("namespace"); ns == "" || s.Namespace == ns {
			items = append(items, s)
		}
	}
	writeJSON(w, http.StatusOK, corev1.ServiceList{TypeMeta: metav1.TypeMeta{Kind: "ServiceList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10)}, Items: items})
}

func (a *api) getService(w http.ResponseWriter, r *http.Request) {
	svc, ok := a.services.get(r.PathValue("namespace") + "/" + r.PathValue("name"))
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("services %q not found", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, svc)
}
