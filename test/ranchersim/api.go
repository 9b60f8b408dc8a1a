package main

import (
	"crypto/rand"
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

// kubeconfigFile is where k3s writes the admin kubeconfig at every start.
const kubeconfigFile = "/etc/rancher/k3s/k3s.yaml"

// api is the part of kube-apiserver on 6443 that certificate tooling uses: discovery and
// secrets, read and delete, in their real JSON form. Clients authenticate with a certificate
// signed by client-ca, as k3s's do; only system:masters may act.
type api struct {
	store    *secretStore
	clientCA *x509.CertPool
	serving  tls.Certificate
	version  string        // the k3s version, for /version
	stall    time.Duration // answer this late: an API server that does not answer in time
}

// writeKubeconfig writes the admin kubeconfig as k3s does: the server CA and client-admin's
// certificate and key inline, the server at 127.0.0.1:6443.
func (k *k3s) writeKubeconfig() error {
	cert, err := os.ReadFile(k.path("server/tls/client-admin.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(k.path("server/tls/client-admin.key"))
	if err != nil {
		return err
	}
	enc := func(b []byte) string { return b64(b) }
	cfg := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`, enc(encodeCerts(k.cas["server/tls/server-ca"].cert)), enc(cert), enc(key))
	return writeFile(kubeconfigFile, []byte(cfg), 0o600)
}

// newAPI serves the API with the current serving certificate (dynamic-cert.json).
func (k *k3s) newAPI() (*api, error) {
	s, _, err := readSecretFile(k.path(dynamicCertFile))
	if err != nil {
		return nil, err
	}
	serving, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(k.cas["server/tls/client-ca"].cert)
	return &api{store: k.store, clientCA: pool, serving: serving, version: os.Getenv("CATTLE_K3S_VERSION"), stall: k.cfg.apiStall}, nil
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
	return &http.Server{
		Addr:    addr,
		Handler: a.authenticated(mux),
		// The certificate is checked in the handler, as kube-apiserver does, so that a wrong
		// one gets 401 rather than a failed handshake.
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{a.serving}, ClientAuth: tls.RequestClientCert},
	}
}

func (a *api) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(a.stall)
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		opts := x509.VerifyOptions{Roots: a.clientCA, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, c := range r.TLS.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		user := r.TLS.PeerCertificates[0]
		if _, err := user.Verify(opts); err != nil {
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		}
		if !slices.Contains(user.Subject.Organization, "system:masters") {
			writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
				fmt.Sprintf("%s is forbidden: User %q cannot %s resource", r.URL.Path, user.Subject.CommonName, strings.ToLower(r.Method)))
			return
		}
		next.ServeHTTP(w, r)
	})
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
	writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}})
}

func (a *api) getResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "secrets", SingularName: "secret", Namespaced: true, Kind: "Secret",
			Verbs: metav1.Verbs{"delete", "get", "list"}}}})
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
