// Package cluster talks to the embedded Kubernetes cluster of a Rancher container through the
// container's own API server, with the container's admin kubeconfig: it lists the certificates
// the cluster keeps as secrets, and reads, deletes and puts back the objects a rotation renews.
// It uses client-go's REST client with the core/v1 types only, not the clientset with every API
// group.
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

var codecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(scheme)
}()

// Options say how to reach an API server.
type Options struct {
	Kubeconfig []byte
	// Address is host:port to dial instead of the kubeconfig's server (127.0.0.1:6443 or
	// localhost:6443 inside the container). Requests still name the kubeconfig's server, in the
	// TLS server name and the Host header, and the server is verified against the kubeconfig's
	// CA under that name: a dynamiclistener adds any other name it is reached by to its
	// certificate and mints a new one (k3s v0.8 dynamiclistener server.go:312-315, 365-388),
	// and a read must never change the server.
	Address string
	Timeout time.Duration
	// AcceptExpiredServer accepts a serving certificate that has expired but is otherwise
	// valid: it chains to the kubeconfig's CA and names the server. The rotation needs it to
	// delete the expired kube-system/k3s-serving secret; reads never use it.
	AcceptExpiredServer bool
}

// Client is a connection to one cluster's API server.
type Client struct {
	rc      *rest.RESTClient
	tls     *tls.Config
	address string
}

// New makes a client from the container's kubeconfig.
func New(o Options) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(o.Kubeconfig)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "kubeconfig: %v", err)
	}
	server, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "kubeconfig server %q: %v", cfg.Host, err)
	}
	if o.Address == "" {
		o.Address = server.Host
	}
	if cfg.ServerName == "" {
		cfg.ServerName = server.Hostname()
	}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, o.Address)
	}
	cfg.Dial = dial
	cfg.Timeout = o.Timeout
	cfg.APIPath = "/api"
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.NegotiatedSerializer = codecs.WithoutConversion()
	cfg.UserAgent = "rancher-cert-exporter"
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "kubeconfig credentials: %v", err)
	}
	if o.AcceptExpiredServer {
		acceptExpired(tlsCfg)
		cfg.TLSClientConfig = rest.TLSClientConfig{}
		cfg.Transport, cfg.Dial = &http.Transport{TLSClientConfig: tlsCfg, DialContext: dial}, nil
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "kubeconfig: %v", err)
	}
	return &Client{rc: rc, tls: tlsCfg, address: o.Address}, nil
}

// acceptExpired verifies the server's chain and name as of the last second its certificate
// was valid, instead of now.
func acceptExpired(cfg *tls.Config) {
	roots, name := cfg.RootCAs, cfg.ServerName
	cfg.InsecureSkipVerify = true //nolint:gosec // verified below, all but the expiry
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		if len(certs) == 0 {
			return errors.New("no server certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool(), CurrentTime: time.Now()}
		if leaf := certs[0]; opts.CurrentTime.After(leaf.NotAfter) {
			opts.CurrentTime = leaf.NotAfter.Add(-time.Second)
		}
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := certs[0].Verify(opts)
		return err
	}
}

// SecretCert is a certificate a secret holds under one of its keys.
type SecretCert struct {
	Namespace, Name, Key string
	Data                 []byte
}

// Path names it as namespace/name/key.
func (s SecretCert) Path() string { return s.Namespace + "/" + s.Name + "/" + s.Key }

// pageSize is how many secrets one list request asks for; helm keeps a secret per release
// revision, so a cluster may hold thousands.
const pageSize = 250

// Certificates lists every secret in every namespace, page by page, and keeps the
// certificates: tls.crt of each kubernetes.io/tls secret and ca.crt of any secret. Nothing
// else of a secret — tls.key above all — is kept, parsed or logged.
func (c *Client) Certificates(ctx context.Context) ([]SecretCert, error) {
	var out []SecretCert
	for cont := ""; ; {
		var list corev1.SecretList
		req := c.rc.Get().Resource("secrets").Param("limit", strconv.Itoa(pageSize))
		if cont != "" {
			req = req.Param("continue", cont)
		}
		if err := req.Do(ctx).Into(&list); err != nil {
			return nil, classify("list secrets", err)
		}
		for _, s := range list.Items {
			if data, ok := s.Data[corev1.TLSCertKey]; ok && s.Type == corev1.SecretTypeTLS {
				out = append(out, SecretCert{s.Namespace, s.Name, corev1.TLSCertKey, data})
			}
			if data, ok := s.Data[corev1.ServiceAccountRootCAKey]; ok {
				out = append(out, SecretCert{s.Namespace, s.Name, corev1.ServiceAccountRootCAKey, data})
			}
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// ListenerConfig is where k3s v0.8 keeps its 6443 certificate (its pkg/tls/storage.go:13-16).
var ListenerConfig = struct{ Namespace, Name, Key string }{"kube-system", "tls-config", "cattle"}

// listenerConfig is the part of a k3s.cattle.io/v1 ListenerConfig that holds the certificates:
// each "base64 DER#base64 PEM key" (dynamiclistener c08b499d server.go:494-537).
type listenerConfig struct {
	Status struct {
		GeneratedCerts map[string]string `json:"generatedCerts"`
	} `json:"status"`
}

// ListenerCertificate reads the certificate the 6443 listener of k3s v0.8 serves from its
// ListenerConfig, as DER. The key beside it is never decoded or kept.
func (c *Client) ListenerCertificate(ctx context.Context) ([]byte, error) {
	path := fmt.Sprintf("/apis/k3s.cattle.io/v1/namespaces/%s/listenerconfigs/%s", ListenerConfig.Namespace, ListenerConfig.Name)
	body, err := c.rc.Get().AbsPath(path).DoRaw(ctx)
	if err != nil {
		return nil, classify("get listenerconfig "+ListenerConfig.Namespace+"/"+ListenerConfig.Name, err)
	}
	var lc listenerConfig
	if err := json.Unmarshal(body, &lc); err != nil {
		return nil, readerr.Newf(readerr.ParseError, "listenerconfig %s/%s: %v", ListenerConfig.Namespace, ListenerConfig.Name, err)
	}
	stored, ok := lc.Status.GeneratedCerts[ListenerConfig.Key]
	if !ok {
		return nil, readerr.Newf(readerr.NoCertificate, "listenerconfig %s/%s holds no certificate %q", ListenerConfig.Namespace, ListenerConfig.Name, ListenerConfig.Key)
	}
	certPart, _, _ := strings.Cut(stored, "#")
	der, err := base64.StdEncoding.DecodeString(certPart)
	if err != nil {
		return nil, readerr.Newf(readerr.ParseError, "listenerconfig %s/%s: certificate %q: %v", ListenerConfig.Namespace, ListenerConfig.Name, ListenerConfig.Key, err)
	}
	return der, nil
}

// ServingCertificate is the certificate the API server serves, verified as requests are.
func (c *Client) ServingCertificate(ctx context.Context) (*x509.Certificate, error) {
	conn, err := (&tls.Dialer{Config: c.tls}).DialContext(ctx, "tcp", c.address)
	if err != nil {
		return nil, readerr.Newf(readerr.APIUnreachable, "TLS to the API server at %s: %v", c.address, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// classify puts an error under its read-error reason: the server refused the credentials,
// answered with another error, or did not answer (including a certificate that does not
// verify and a timeout).
func classify(what string, err error) error {
	var status apierrors.APIStatus
	switch {
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return readerr.Newf(readerr.APIAuth, "%s: %v", what, err)
	case errors.As(err, &status):
		return readerr.Newf(readerr.APIError, "%s: %v", what, err)
	case isTransport(err):
		return readerr.Newf(readerr.APIUnreachable, "%s: %v", what, err)
	}
	return readerr.Newf(readerr.APIError, "%s: %v", what, err)
}

func isTransport(err error) bool {
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
