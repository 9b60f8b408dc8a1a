package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// legacyTLSDir is where Rancher 2.0–2.2's embedded Kubernetes kept its certificates; a
// server upgraded into 2.3 still has them, and 2.3 never renews them.
const legacyTLSDir = "management-state/tls"

// ensureLegacyTLS writes, on the first start, what 2.0–2.2 left in management-state/tls: a CA,
// the localhost serving certificate, a token CA and the token-node client certificate, issued
// when the k3s leaves were.
func (k *k3s) ensureLegacyTLS() error {
	if !k.cfg.legacyTLS || !k.fresh {
		return nil
	}
	dir := filepath.Join(k.cfg.dataDir, legacyTLSDir)
	issued := k.notAfter.Add(-leafLife)
	for _, pair := range []struct {
		ca, leaf string
		spec     leafSpec
	}{
		{"ca", "localhost", leafSpec{cn: "localhost", server: true, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}},
		{"token-ca", "token-node", leafSpec{cn: "node", orgs: []string{"system:nodes"}}},
	} {
		caKey, err := loadOrCreateKey(filepath.Join(dir, pair.ca+".key"))
		if err != nil {
			return err
		}
		ca, err := newCA(fmt.Sprintf("%s@%d", pair.ca, issued.Unix()), caKey, issued)
		if err != nil {
			return err
		}
		key, err := loadOrCreateKey(filepath.Join(dir, pair.leaf+".key"))
		if err != nil {
			return err
		}
		leaf, err := newLeaf(pair.spec, key.Public(), ca, caKey, issued, k.notAfter)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, pair.ca+".crt"), encodeCerts(ca), 0o644); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, pair.leaf+".crt"), encodeCerts(leaf), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// blobSize is the size of one layer-like file under agent/containerd.
const blobSize = 16 << 20

// ensureContainerdState writes, on the first start, what containerd keeps beside the agent's
// certificates on a real server: image layers, hundreds of megabytes. The files are sparse
// (a random head, then a hole), so they cost no disk, yet a tar of them is as big as a real
// layer: a reader that streams the whole agent directory pays for every byte.
func (k *k3s) ensureContainerdState() error {
	if !k.cfg.agent || k.cfg.containerdMB <= 0 || !k.fresh {
		return nil
	}
	dir := k.path("agent/containerd/io.containerd.content.v1.content/blobs/sha256")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	start := time.Now()
	for written := 0; written < k.cfg.containerdMB<<20; written += blobSize {
		head := make([]byte, 4096)
		rand.Read(head)
		sum := sha256.Sum256(head)
		f, err := os.Create(filepath.Join(dir, hex.EncodeToString(sum[:])))
		if err != nil {
			return err
		}
		_, err = f.Write(head)
		if err == nil {
			err = f.Truncate(blobSize)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	k.log.info("containerd content store: %d MiB of image layers (%s)", k.cfg.containerdMB, time.Since(start).Round(time.Millisecond))
	return nil
}
