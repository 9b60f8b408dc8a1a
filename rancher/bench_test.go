package rancher

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
)

// BenchmarkParseK3sTree reads and parses the k3s v0.8.1 fixture tree as the archive endpoint
// streams it, without any cache.
func BenchmarkParseK3sTree(b *testing.B) {
	root := "../testdata/k3s-v0.8.1-tls/server/tls"
	var es []entry
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			es = append(es, entry{name: "tls/" + strings.TrimPrefix(p, root+"/"), typ: tar.TypeReg, data: string(data)})
		}
		return err
	})
	stream := archive(b, es...).Bytes()
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		files, err := ReadArchive(bytesReader(stream), ServerTLSDir)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			if _, err := certs.Parse(f.Path, f.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
}
