package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

type pair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (p pair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw})
}
func (p pair) keyPEM() []byte {
	der, _ := x509.MarshalECPrivateKey(p.key)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func issue(t *testing.T, cn string, parent *pair, notAfter time.Time, server bool) pair {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	notBefore := notAfter.AddDate(-1, 0, 0)
	if parent == nil { // CAs are older than anything they sign
		notBefore = time.Now().AddDate(-2, 0, 0)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"system:masters"}},
		NotBefore: notBefore, NotAfter: notAfter}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		signer, signerKey = parent.cert, parent.key
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pair{cert, key}
}

// apiServer is a TLS server that authenticates clients against clientCA and serves handler.
type apiServer struct {
	*httptest.Server
	serverCA   pair
	kubeconfig []byte
	mu         sync.Mutex
	queries    []string
}

func newAPIServer(t *testing.T, servingNotAfter time.Time, handler http.HandlerFunc) *apiServer {
	t.Helper()
	now := time.Now()
	serverCA := issue(t, "k3s-server-ca", nil, now.AddDate(10, 0, 0), false)
	clientCA := issue(t, "k3s-client-ca", nil, now.AddDate(10, 0, 0), false)
	serving := issue(t, "k3s", &serverCA, servingNotAfter, true)
	admin := issue(t, "system:admin", &clientCA, now.AddDate(1, 0, 0), false)
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	s := &apiServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries = append(s.queries, r.URL.RawQuery)
		s.mu.Unlock()
		if len(r.TLS.PeerCertificates) == 0 {
			status(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized)
			return
		}
		if _, err := r.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			status(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized)
			return
		}
		handler(w, r)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	s.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, Certificates: []tls.Certificate{{Certificate: [][]byte{serving.cert.Raw}, PrivateKey: serving.key}}}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.serverCA = serverCA
	s.kubeconfig = kubeconfig(serverCA, admin)
	return s
}

// kubeconfig is what k3s writes: the server CA and the user's certificate and key inline.
func kubeconfig(serverCA, user pair) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: %s
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
`, b64(serverCA.certPEM()), b64(user.certPEM()), b64(user.keyPEM())))
}

func (s *apiServer) client(t *testing.T, acceptExpired bool) *Client {
	t.Helper()
	c, err := New(Options{Kubeconfig: s.kubeconfig, Address: s.Listener.Addr().String(), Timeout: 2 * time.Second, AcceptExpiredServer: acceptExpired})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: reason, Code: int32(code)})
}

func secret(ns, name string, typ corev1.SecretType, data map[string][]byte) corev1.Secret {
	return corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: typ, Data: data}
}

func TestCertificatesAcrossPages(t *testing.T) {
	pages := [][]corev1.Secret{
		{
			secret("cattle-system", "cattle-webhook-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("WEBHOOK"), "tls.key": []byte("KEY")}),
			secret("cattle-system", "sh.helm.release.v1.x.v1", "helm.sh/release.v1", map[string][]byte{"release": []byte("blob")}),
		},
		{
			secret("default", "default-token-abcde", corev1.SecretTypeServiceAccountToken, map[string][]byte{"ca.crt": []byte("CA"), "token": []byte("T")}),
			secret("kube-system", "k3s-serving", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("SERVING"), "tls.key": []byte("KEY"), "ca.crt": []byte("SERVERCA")}),
			secret("x", "opaque-with-tls-crt", corev1.SecretTypeOpaque, map[string][]byte{"tls.crt": []byte("NOT A TLS SECRET")}),
		},
	}
	s := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, r *http.Request) {
		page := 0
		if r.URL.Query().Get("continue") == "page2" {
			page = 1
		}
		list := corev1.SecretList{TypeMeta: metav1.TypeMeta{Kind: "SecretList", APIVersion: "v1"}, Items: pages[page]}
		if page == 0 {
			list.Continue = "page2"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	})
	got, err := s.client(t, false).Certificates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range got {
		paths = append(paths, c.Path()+"="+string(c.Data))
	}
	sort.Strings(paths)
	want := "cattle-system/cattle-webhook-tls/tls.crt=WEBHOOK default/default-token-abcde/ca.crt=CA kube-system/k3s-serving/ca.crt=SERVERCA kube-system/k3s-serving/tls.crt=SERVING"
	if strings.Join(paths, " ") != want {
		t.Fatalf("got %v\nwant %s", paths, want)
	}
	if len(s.queries) != 2 || !strings.Contains(s.queries[0], "limit=250") || !strings.Contains(s.queries[1], "continue=page2") {
		t.Fatalf("queries %v, want two pages of 250", s.queries)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"forbidden", func(w http.ResponseWriter, _ *http.Request) {
			status(w, http.StatusForbidden, metav1.StatusReasonForbidden)
		}, readerr.APIAuth},
		{"server error", func(w http.ResponseWriter, _ *http.Request) {
			status(w, http.StatusInternalServerError, metav1.StatusReasonInternalError)
		}, readerr.APIError},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{"))
		}, readerr.APIError},
		{"no answer in time", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, readerr.APIUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newAPIServer(t, time.Now().AddDate(1, 0, 0), tt.handler)
			_, err := s.client(t, false).Certificates(context.Background())
			if readerr.ReasonOf(err) != tt.want {
				t.Fatalf("err %v, want reason %s", err, tt.want)
			}
		})
	}

	// Credentials the server does not know: 401.
	s := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, _ *http.Request) {})
	other := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, _ *http.Request) {})
	c, _ := New(Options{Kubeconfig: other.kubeconfig, Address: s.Listener.Addr().String(), Timeout: time.Second})
	if _, err := c.Certificates(context.Background()); readerr.ReasonOf(err) != readerr.APIUnreachable {
		// other's CA does not verify s's serving certificate: not even a request is made.
		t.Fatalf("server of another cluster: %v", err)
	}
	s.Close()
	if _, err := s.client(t, false).Certificates(context.Background()); readerr.ReasonOf(err) != readerr.APIUnreachable {
		t.Fatalf("closed server: %v", err)
	}
}

func TestRefusedCredentials(t *testing.T) {
	s := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, _ *http.Request) {})
	stranger := issue(t, "system:admin", nil, time.Now().AddDate(1, 0, 0), false) // self-signed, not from client-ca
	c, err := New(Options{Kubeconfig: kubeconfig(s.serverCA, stranger), Address: s.Listener.Addr().String(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Certificates(context.Background()); readerr.ReasonOf(err) != readerr.APIAuth {
		t.Fatalf("refused certificate: %v, want %s", err, readerr.APIAuth)
	}
}

func TestExpiredServingCertificate(t *testing.T) {
	deleted := false
	s := newAPIServer(t, time.Now().Add(-time.Hour), func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && r.URL.Path == "/api/v1/namespaces/kube-system/secrets/k3s-serving" {
			deleted = true
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
			return
		}
		status(w, http.StatusNotFound, metav1.StatusReasonNotFound)
	})
	if _, err := s.client(t, false).Certificates(context.Background()); readerr.ReasonOf(err) != readerr.APIUnreachable || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a read must refuse an expired serving certificate: %v", err)
	}
	if _, err := s.client(t, false).ServingCertificate(context.Background()); err == nil {
		t.Fatal("ServingCertificate accepted an expired certificate")
	}
	ok, err := s.client(t, true).Delete(context.Background(), Secret("kube-system", "k3s-serving"))
	if err != nil || !ok || !deleted {
		t.Fatalf("delete through an expired serving certificate: %v %v %v", ok, err, deleted)
	}
	if ok, err := s.client(t, true).Delete(context.Background(), Secret("kube-system", "gone")); ok || err != nil {
		t.Fatalf("deleting a missing secret: %v %v", ok, err)
	}
	// Accepting expiry is not accepting another CA.
	other := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(http.ResponseWriter, *http.Request) {})
	c, _ := New(Options{Kubeconfig: other.kubeconfig, Address: s.Listener.Addr().String(), Timeout: time.Second, AcceptExpiredServer: true})
	if _, err := c.Delete(context.Background(), Secret("kube-system", "k3s-serving")); readerr.ReasonOf(err) != readerr.APIUnreachable {
		t.Fatalf("expired certificate of another CA accepted: %v", err)
	}
}

// TestReadsNameTheKubeconfigsServer: k3s v0.8's listener mints a new certificate for any name it
// is reached by that it does not know (SNI or Host), so a read dials the container's address but
// names only the kubeconfig's server — here localhost, with v0.8's basic-auth user — and reads
// the listener's certificate from its ListenerConfig without its key.
func TestReadsNameTheKubeconfigsServer(t *testing.T) {
	now := time.Now()
	serverCA := issue(t, "k3s-server-ca", nil, now.AddDate(10, 0, 0), false)
	listenerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "cattle"}, DNSNames: []string{"localhost"},
		NotBefore: serverCA.cert.NotBefore, NotAfter: now.Add(30 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, serverCA.cert, &listenerKey.PublicKey, serverCA.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(listenerKey)
	stored := base64.StdEncoding.EncodeToString(der) + "#" + base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))

	var mu sync.Mutex
	var hosts, serverNames []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts, serverNames = append(hosts, r.Host), append(serverNames, r.TLS.ServerName)
		mu.Unlock()
		if user, pass, ok := r.BasicAuth(); !ok || user != "admin" || pass != "s3cret" {
			status(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized)
			return
		}
		if r.URL.Path != "/apis/k3s.cattle.io/v1/namespaces/kube-system/listenerconfigs/tls-config" {
			status(w, http.StatusNotFound, metav1.StatusReasonNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"apiVersion":"k3s.cattle.io/v1","kind":"ListenerConfig","metadata":{"name":"tls-config","namespace":"kube-system"},"status":{"caCert":%q,"generatedCerts":{"cattle":%q},"knownIps":null}}`,
			serverCA.certPEM(), stored)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: listenerKey}}}
	srv.StartTLS()
	defer srv.Close()

	kc := []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {server: "https://localhost:6443", certificate-authority-data: %s}
users:
- name: default
  user: {username: admin, password: s3cret}
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
`, base64.StdEncoding.EncodeToString(serverCA.certPEM())))
	c, err := New(Options{Kubeconfig: kc, Address: srv.Listener.Addr().String(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ListenerCertificate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(der) {
		t.Fatal("the certificate read is not the one stored")
	}
	if _, err := c.ServingCertificate(context.Background()); err != nil {
		t.Fatalf("6443 as a client sees it: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range hosts {
		if hosts[i] != "localhost:6443" || serverNames[i] != "localhost" {
			t.Fatalf("request %d named Host %q, SNI %q: want only the kubeconfig's localhost", i, hosts[i], serverNames[i])
		}
	}
}

// TestClustersAcrossPagesDecodeOnlyWhatIsUsed: the clusters are listed page by page, bounded;
// of each, the fields the exporter uses — and nothing of the credentials the object carries.
func TestClustersAcrossPagesDecodeOnlyWhatIsUsed(t *testing.T) {
	object := func(name string, rke1 bool) map[string]any {
		spec := map[string]any{"displayName": "prod-" + name, "internal": name == "local"}
		if rke1 {
			spec["rancherKubernetesEngineConfig"] = map[string]any{"services": map[string]any{"etcd": map[string]any{"backupConfig": map[string]any{"s3BackupConfig": map[string]any{"secretKey": "s3-secret"}}}}}
		}
		return map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "Cluster", "metadata": map[string]any{"name": name},
			"spec": spec, "status": map[string]any{"driver": "rancherKubernetesEngine", "provider": "rke", "version": map[string]any{"gitVersion": "v1.27.16"},
				"serviceAccountToken": "eyJ.secret-token", "caCert": "Q0E=",
				"conditions":             []map[string]any{{"type": "Connected", "status": "False", "lastUpdateTime": "2026-12-01T10:00:00Z", "reason": "", "message": ""}},
				"certificatesExpiration": map[string]any{"kube-apiserver": map[string]any{"expirationDate": "2027-01-01T00:00:00Z"}}}}
	}
	pages := [][]map[string]any{{object("local", false), object("c-aaaaa", true)}, {object("c-bbbbb", false)}}
	s := newAPIServer(t, time.Now().AddDate(1, 0, 0), func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/management.cattle.io/v3/clusters" {
			status(w, http.StatusNotFound, metav1.StatusReasonNotFound)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("continue"))
		meta := map[string]any{}
		if page+1 < len(pages) {
			meta["continue"] = strconv.Itoa(page + 1)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"kind": "ClusterList", "metadata": meta, "items": pages[page]})
	})
	got, err := s.client(t, false).Clusters(context.Background(), 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d clusters, %v", len(got), err)
	}
	a := got[1]
	c, _ := a.Condition("Connected")
	if a.ID != "c-aaaaa" || a.DisplayName != "prod-c-aaaaa" || !a.RKE1 || a.Internal || a.Driver != "rancherKubernetesEngine" || a.Provider != "rke" ||
		a.Version != "v1.27.16" || c.Status != "False" || a.Certificates["kube-apiserver"] != "2027-01-01T00:00:00Z" || !got[0].Internal || got[2].RKE1 {
		t.Errorf("decoded %+v", got)
	}
	if dump := fmt.Sprintf("%#v", got); strings.Contains(dump, "secret") || strings.Contains(dump, "Q0E=") {
		t.Errorf("a credential was decoded: %s", dump)
	}
	if _, err := s.client(t, false).Clusters(context.Background(), 2); readerr.ReasonOf(err) != readerr.TooLarge {
		t.Errorf("3 clusters with a bound of 2: %v", err)
	}
}
