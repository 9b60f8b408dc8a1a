package main

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// api is the part of kube-apiserver on 6443 that certificate tooling uses: discovery, secrets
// (read, delete, create and replace: api_write.go), the webhook's MutatingWebhookConfiguration,
// services (read), Rancher's clusters (read) and, on k3s v0.8, the listener's ListenerConfig, in their real JSON form.
// Clients authenticate with a certificate signed by client-ca, as k3s's do, or up to v1.18 with
// the basic-auth users of server/cred/passwd (--basic-auth-file, v0.8.0
// pkg/daemons/control/server.go:174); only system:masters may act.
type api struct {
	store     *secretStore
	webhooks  *webhookStore
	services  *serviceStore
	clusters  clusterStore
	listeners *listenerStore // nil where the listener keeps its certificate in a file
	clientCA  *x509.CertPool
	passwd    string        // the passwd file
	version   string        // the k3s version, for /version
	stall     time.Duration // answer this late: an API server that does not answer in time
	tls       *tls.Config
	wrap      func(http.Handler) http.Handler // the listener's own handler around the API
	settings  settings                        // Rancher's, once it has started
}

// newAPI serves the API with the 6443 listener's certificate: the ListenerConfig's on v0.8,
// else the cache dynamic-cert.json.
func (k *k3s) newAPI(l *listener) (*api, error) {
	pool := x509.NewCertPool()
	pool.AddCert(k.cas["server/tls/client-ca"].cert)
	a := &api{store: k.store, webhooks: k.webhooks, services: k.services, clusters: k.clusters, clientCA: pool, passwd: k.path(passwdFile), version: os.Getenv("CATTLE_K3S_VERSION"), stall: k.cfg.apiStall,
		// The certificate is checked in the handler, as kube-apiserver does, so that a wrong
		// one gets 401 rather than a failed handshake.
		tls: &tls.Config{ClientAuth: tls.RequestClientCert}, wrap: func(h http.Handler) http.Handler { return h }}
	if l != nil {
		a.listeners, a.tls.GetCertificate, a.wrap = l.store, l.getCertificate, l.cacheHandler
		return a, nil
	}
	s, _, err := readSecretFile(k.path(dynamicCertFile))
	if err != nil {
		return nil, err
	}
	serving, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, err
	}
	a.tls.Certificates = []tls.Certificate{serving}
	return a, nil
}

func (a *api) server(addr string) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", a.getVersion)
	mux.HandleFunc("GET /api", a.getAPIVersions)
	mux.HandleFunc("GET /apis", a.getAPIGroups)
	mux.HandleFunc("GET /api/v1", a.getResources)
	mux.HandleFunc("GET /api/v1/secrets", a.listSecrets)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/secrets", a.listSecrets)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/secrets/{name}", a.getSecret)
	mux.HandleFunc("DELETE /api/v1/namespaces/{namespace}/secrets/{name}", a.deleteSecret)
	mux.HandleFunc("GET /api/v1/services", a.listServices)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/services", a.listServices)
	mux.HandleFunc("GET /api/v1/namespaces/{namespace}/services/{name}", a.getService)
	mux.HandleFunc("GET /apis/management.cattle.io/v3", a.getManagementResources)
	mux.HandleFunc("GET /apis/management.cattle.io/v3/clusters", a.listClusters)
	mux.HandleFunc("GET /apis/management.cattle.io/v3/clusters/{name}", a.getCluster)
	if servesSettings() {
		mux.HandleFunc("GET /apis/management.cattle.io/v3/settings/{name}", a.getSetting)
	}
	a.writes(mux)
	if a.listeners != nil {
		mux.HandleFunc("GET /apis/k3s.cattle.io/v1", a.getListenerResources)
		mux.HandleFunc("GET /apis/k3s.cattle.io/v1/listenerconfigs", a.listListenerConfigs)
		mux.HandleFunc("GET /apis/k3s.cattle.io/v1/namespaces/{namespace}/listenerconfigs", a.listListenerConfigs)
		mux.HandleFunc("GET /apis/k3s.cattle.io/v1/namespaces/{namespace}/listenerconfigs/{name}", a.getListenerConfig)
	}
	return &http.Server{Addr: addr, Handler: a.wrap(a.authenticated(mux)), TLSConfig: a.tls}
}

func (a *api) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(a.stall)
		name, groups, ok := a.user(r)
		if !ok {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		if !slices.Contains(groups, "system:masters") {
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				fmt.Sprintf("%s is forbidden: User %q cannot %s resource", r.URL.Path, name, strings.ToLower(r.Method)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// user authenticates a request: basic auth against the passwd file, else a client certificate
// signed by client-ca.
func (a *api) user(r *http.Request) (string, []string, bool) {
	if name, password, ok := r.BasicAuth(); ok {
		users, err := readPasswd(a.passwd)
		u, known := users[name]
		if err != nil || !known || subtle.ConstantTimeCompare([]byte(u[0]), []byte(password)) != 1 {
			return "", nil, false
		}
		return name, []string{u[1]}, true
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", nil, false
	}
	opts := x509.VerifyOptions{Roots: a.clientCA, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range r.TLS.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	user := r.TLS.PeerCertificates[0]
	if _, err := user.Verify(opts); err != nil {
		return "", nil, false
	}
	return user.Subject.CommonName, user.Subject.Organization, true
}

func (a *api) getVersion(w http.ResponseWriter, _ *http.Request) {
	major, minor, _ := strings.Cut(strings.TrimPrefix(a.version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	writeJSON(w, http.StatusOK, map[string]string{"major": major, "minor": minor, "gitVersion": a.version, "platform": "linux/amd64"})
}

func (a *api) getAPIVersions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: "127.0.0.1:6443"}}})
}

func (a *api) getAPIGroups(w http.ResponseWriter, _ *http.Request) {
	groups := []metav1.APIGroup{}
	if a.listeners != nil {
		v := metav1.GroupVersionForDiscovery{GroupVersion: "k3s.cattle.io/v1", Version: "v1"}
		groups = append(groups, metav1.APIGroup{Name: "k3s.cattle.io", Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	}
	v := metav1.GroupVersionForDiscovery{GroupVersion: "management.cattle.io/v3", Version: "v3"}
	groups = append(groups, metav1.APIGroup{Name: "management.cattle.io", Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	v = metav1.GroupVersionForDiscovery{GroupVersion: "admissionregistration.k8s.io/v1", Version: "v1"}
	groups = append(groups, metav1.APIGroup{Name: "admissionregistration.k8s.io", Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: groups})
}

func (a *api) getListenerResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "k3s.cattle.io/v1",
		APIResources: []metav1.APIResource{{Name: "listenerconfigs", SingularName: "listenerconfig", Namespaced: true, Kind: "ListenerConfig",
			Verbs: metav1.Verbs{"get", "list"}}}})
}

func (a *api) getListenerConfig(w http.ResponseWriter, r *http.Request) {
	lc, found, err := a.listeners.get()
	switch {
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case !found || r.PathValue("namespace") != lc.Namespace || r.PathValue("name") != lc.Name:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("listenerconfigs.k3s.cattle.io %q not found", r.PathValue("name")))
	default:
		writeJSON(w, http.StatusOK, lc)
	}
}

func (a *api) listListenerConfigs(w http.ResponseWriter, r *http.Request) {
	lc, found, err := a.listeners.get()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	items := []listenerConfig{}
	if ns := r.PathValue("namespace"); found && (ns == "" || ns == lc.Namespace) {
		items = append(items, lc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "k3s.cattle.io/v1", "kind": "ListenerConfigList",
		"metadata": metav1.ListMeta{ResourceVersion: lc.ResourceVersion}, "items": items})
}

func (a *api) getResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "secrets", SingularName: "secret", Namespaced: true, Kind: "Secret",
			Verbs: metav1.Verbs{"create", "delete", "get", "list", "update"}}, {Name: "services", SingularName: "service", ShortNames: []string{"svc"},
			Namespaced: true, Kind: "Service", Verbs: metav1.Verbs{"get", "list"}}}})
}

// listSecrets lists in pages of ?limit=, with an opaque ?continue= token, as the API server does.
func (a *api) listSecrets(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("watch") != "" {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "watch is not served here")
		return
	}
	all, err := a.store.list()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	ns := r.PathValue("namespace")
	var items []corev1.Secret
	for _, s := range all {
		if ns == "" || s.Namespace == ns {
			items = append(items, s)
		}
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("continue"))
	if start > len(items) {
		start = len(items)
	}
	items = items[start:]
	list := corev1.SecretList{TypeMeta: metav1.TypeMeta{Kind: "SecretList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(time.Now().UnixNano(), 10)}, Items: items}
	if limit, _ := strconv.Atoi(r.URL.Query().Get("limit")); limit > 0 && limit < len(items) {
		list.Items = items[:limit]
		list.Continue = strconv.Itoa(start + limit)
		remaining := int64(len(items) - limit)
		list.RemainingItemCount = &remaining
	}
	if list.Items == nil {
		list.Items = []corev1.Secret{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *api) getSecret(w http.ResponseWriter, r *http.Request) {
	s, ok := a.store.get(r.PathValue("namespace"), r.PathValue("name"))
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("secrets %q not found", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *api) deleteSecret(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	s, _ := a.store.get(ns, name)
	deleted, err := a.store.remove(ns, name)
	switch {
	case err != nil:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
	case !deleted:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("secrets %q not found", name))
	default:
		writeJSON(w, http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
			Details: &metav1.StatusDetails{Name: name, Kind: "secrets", UID: s.UID}})
	}
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // an error is the client going away
}

func newUID() types.UID {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return types.UID(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

// served is the certificate the listener serves to a client that names host, as k3s's own
// client does when it writes the kubeconfig.
func (a *api) served(host string) (*x509.Certificate, error) {
	if a.tls.GetCertificate == nil {
		return x509.ParseCertificate(a.tls.Certificates[0].Certificate[0])
	}
	c, err := a.tls.GetCertificate(&tls.ClientHelloInfo{ServerName: host})
	if err != nil {
		return nil, err
	}
	return c.Leaf, nil
}
