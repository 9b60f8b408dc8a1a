package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigFile is where k3s writes the admin kubeconfig at every start: outside the volume,
// so it survives a docker restart, and Rancher reads it through the ~/.kube/k3s.yaml symlink
// (rancher v2.3.x package/Dockerfile:6-8).
const kubeconfigFile = "/etc/rancher/k3s/k3s.yaml"

// passwdFile holds the API server's basic-auth users (v0.8.0 pkg/daemons/control/server.go:259).
const passwdFile = "server/cred/passwd"

// ensurePasswd writes the users once, as genUsers does (server.go:410-436): password, user,
// uid, group, one random token each.
func (k *k3s) ensurePasswd() error {
	if info, err := os.Stat(k.path(passwdFile)); err == nil && info.Size() > 0 {
		return nil
	}
	var b strings.Builder
	for _, user := range []string{"admin", "system", "node"} {
		token := make([]byte, 16)
		rand.Read(token)
		fmt.Fprintf(&b, "%s,%s,%s,system:masters\n", hex.EncodeToString(token), user, user)
	}
	return writeFile(k.path(passwdFile), []byte(b.String()), 0o600)
}

// readPasswd reads the users as password by name, with their group.
func readPasswd(file string) (map[string][2]string, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][2]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	users := map[string][2]string{}
	for _, rec := range records {
		if len(rec) >= 4 {
			users[rec[1]] = [2]string{rec[0], rec[3]}
		}
	}
	return users, nil
}

// writeKubeconfig writes the admin kubeconfig at the end of the start, in this k3s's form: the
// server CA, and up to v1.18 user admin with its password, from v1.19 client-admin's certificate
// and key (v1.19.8 pkg/server/server.go:291).
func (k *k3s) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = "https://" + k.rel.kubeconfigHost + ":6443"
	cluster.CertificateAuthorityData = encodeCerts(k.cas["server/tls/server-ca"].cert)
	user := clientcmdapi.NewAuthInfo()
	if k.rel.basicAuthKubeconfig {
		users, err := readPasswd(k.path(passwdFile))
		if err != nil {
			return err
		}
		user.Username, user.Password = "admin", users["admin"][0]
	} else {
		var err error
		if user.ClientCertificateData, err = os.ReadFile(k.path("server/tls/client-admin.crt")); err != nil {
			return err
		}
		if user.ClientKeyData, err = os.ReadFile(k.path("server/tls/client-admin.key")); err != nil {
			return err
		}
	}
	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = "default", "default"
	cfg.Clusters["default"], cfg.AuthInfos["default"], cfg.Contexts["default"] = cluster, user, ctx
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	k.log.info("Wrote kubeconfig %s", kubeconfigFile)
	return writeFile(kubeconfigFile, data, 0o600)
}

// listenerTrusted is the check k3s up to v1.18 makes before it writes the kubeconfig: the
// listener's certificate must verify against the CA it fetched from /cacerts
// (clientaccess.go GetCACerts, validateToken); when it does not, k3s logs the error and leaves
// the old file.
func (k *k3s) listenerTrusted(served *x509.Certificate) bool {
	if !k.rel.basicAuthKubeconfig {
		return true
	}
	roots := x509.NewCertPool()
	roots.AddCert(k.cas["server/tls/server-ca"].cert)
	if _, err := served.Verify(x509.VerifyOptions{Roots: roots, DNSName: k.rel.kubeconfigHost}); err != nil {
		k.log.line("ERRO", "Failed to generate kubeconfig: server https://%s:6443 is not trusted: %v", k.rel.kubeconfigHost, err)
		return false
	}
	return true
}

// rancherConnects is Rancher 2.3's start: it waits for ~/.kube/k3s.yaml and uses it as soon as
// it exists (rancher/norman pkg/kwrapper/k8s/k3s_linux.go:65-83), so after a CA change it holds
// the file of the previous start, rewritten by k3s only at the end of this one; a connection that
// does not verify ends Rancher, and with it the container.
func rancherConnects(kubeconfig []byte, now time.Time) error {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return err
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cluster.CertificateAuthorityData)
	host := strings.TrimSuffix(strings.TrimPrefix(cluster.Server, "https://"), ":6443")
	conn, err := tls.Dial("tcp", "127.0.0.1:6443", &tls.Config{ServerName: host, RootCAs: roots, Time: func() time.Time { return now }})
	if err != nil {
		return fmt.Errorf("Get %s/api?timeout=32s: %w", cluster.Server, unwrapTLS(err)) //nolint:staticcheck // Rancher 2.3 words it so
	}
	return conn.Close()
}

// unwrapTLS gives the x509 error of a failed handshake as Go's HTTP client words it.
func unwrapTLS(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return verr.Err
	}
	return err
}
