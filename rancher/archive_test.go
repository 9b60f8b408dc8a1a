package rancher

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/certs"
	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

type entry struct {
	name, link string
	typ        byte
	data       string
	size       int64
}

func archive(t testing.TB, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.data))
			if e.size > 0 {
				hdr.Size = e.size
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.data))
			if e.size > 0 {
				tw.Write(make([]byte, e.size-int64(len(e.data))))
			}
		}
	}
	tw.Close()
	return &buf
}

func TestReadArchive(t *testing.T) {
	const dir = "/var/lib/rancher/k3s/server/tls"
	buf := archive(t,
		entry{name: "tls", typ: tar.TypeDir},
		entry{name: "tls/server-ca.crt", typ: tar.TypeReg, data: "CA"},
		entry{name: "tls/server-ca.key", typ: tar.TypeReg, data: "KEY"},
		entry{name: "tls/notes.txt", typ: tar.TypeReg, data: "ignored"},
		entry{name: "tls/etcd/peer-ca.crt", typ: tar.TypeReg, data: "PEER"},
		entry{name: "tls/dynamic-cert.json", typ: tar.TypeReg, data: "{}"},
		entry{name: "tls/alias.crt", typ: tar.TypeSymlink, link: "server-ca.crt"},
		entry{name: "tls/abs.crt", typ: tar.TypeSymlink, link: dir + "/etcd/peer-ca.crt"},
		entry{name: "tls/hard.crt", typ: tar.TypeLink, link: "tls/server-ca.crt"},
		entry{name: "tls/escape.crt", typ: tar.TypeSymlink, link: "../../../../../etc/ssl/cert.pem"},
		entry{name: "tls/absescape.crt", typ: tar.TypeSymlink, link: "/etc/ssl/cert.pem"},
		entry{name: "tls/loop-a.crt", typ: tar.TypeSymlink, link: "loop-b.crt"},
		entry{name: "tls/loop-b.crt", typ: tar.TypeSymlink, link: "loop-a.crt"},
		entry{name: "tls/dangling.crt", typ: tar.TypeSymlink, link: "missing.crt"},
		entry{name: "tls/../../evil.crt", typ: tar.TypeReg, data: "EVIL"},
		entry{name: "tls/big.crt", typ: tar.TypeReg, data: "x", size: certs.MaxFileSize + 1},
		entry{name: "tls/fifo.crt", typ: tar.TypeFifo},
		entry{name: "tls/fifo.txt", typ: tar.TypeFifo},
		entry{name: "tls/dev.pem", typ: tar.TypeChar},
	)
	files, err := ReadArchive(buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		if f.Err != nil {
			got[f.Path] = "error:" + readerr.ReasonOf(f.Err)
		} else {
			got[f.Path] = string(f.Data)
		}
	}
	want := map[string]string{
		dir + "/server-ca.crt":     "CA",
		dir + "/etcd/peer-ca.crt":  "PEER",
		dir + "/dynamic-cert.json": "{}",
		dir + "/alias.crt":         "CA",
		dir + "/abs.crt":           "PEER",
		dir + "/hard.crt":          "CA",
		dir + "/escape.crt":        "error:" + readerr.Symlink,
		dir + "/absescape.crt":     "error:" + readerr.Symlink,
		dir + "/loop-a.crt":        "error:" + readerr.Symlink,
		dir + "/loop-b.crt":        "error:" + readerr.Symlink,
		dir + "/dangling.crt":      "error:" + readerr.Symlink,
		dir:                        "error:" + readerr.UnsafePath,
		dir + "/big.crt":           "error:" + readerr.TooLarge,
		dir + "/fifo.crt":          "error:" + readerr.NotRegular,
		dir + "/dev.pem":           "error:" + readerr.NotRegular,
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d files, want %d: %v", len(got), len(want), got)
	}
}

func TestReadArchiveTruncated(t *testing.T) {
	buf := archive(t, entry{name: "tls/a.crt", typ: tar.TypeReg, data: "0123456789"})
	_, err := ReadArchive(bytes.NewReader(buf.Bytes()[:600]), ServerTLSDir)
	if readerr.ReasonOf(err) != readerr.Unreadable {
		t.Fatalf("err = %v, want an unreadable archive", err)
	}
}

func TestIsRancherImage(t *testing.T) {
	for image, want := range map[string]bool{
		"rancher/rancher":                           true,
		"rancher/rancher:v2.3.1":                    true,
		"docker.io/rancher/rancher:v2.5.9":          true,
		"registry.example.com:5000/rancher/rancher": true,
		"mirror.example.com/hub/rancher/rancher:v2": true,
		"rancher/rancher@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": true,
		"rancher/rancher-agent:v2.3.1": false,
		"rancher/k3s":                  false,
		"myrancher/rancher":            false,
		"sha256:0123":                  false,
		"":                             false,
	} {
		if got := IsRancherImage(image); got != want {
			t.Errorf("IsRancherImage(%q) = %v, want %v", image, got, want)
		}
	}
}

// TestReadArchiveFixture reads the k3s v0.8.1 fixture tree as the archive endpoint streams it.
func TestReadArchiveFixture(t *testing.T) {
	root := "../testdata/k3s-v0.8.1-tls/server/tls"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var es []entry
	crts := 0
	for _, e := range entries {
		data, _ := os.ReadFile(root + "/" + e.Name())
		es = append(es, entry{name: "tls/" + e.Name(), typ: tar.TypeReg, data: string(data)})
		if certs.IsCandidate(e.Name()) {
			crts++
		}
	}
	files, err := ReadArchive(archive(t, es...), ServerTLSDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != crts {
		t.Fatalf("got %d files, want the %d .crt files", len(files), crts)
	}
	for _, f := range files {
		if cert, err := certs.Parse(f.Path, f.Data); err != nil || cert == nil {
			t.Errorf("%s: %v", f.Path, err)
		}
	}
}

func FuzzReadArchive(f *testing.F) {
	f.Add(archive(f, entry{name: "tls/a.crt", typ: tar.TypeReg, data: "x"}, entry{name: "tls/b.crt", typ: tar.TypeSymlink, link: "a.crt"}).Bytes())
	f.Add(archive(f, entry{name: "tls/../x.crt", typ: tar.TypeReg, data: "x"}).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		files, _ := ReadArchive(bytes.NewReader(data), ServerTLSDir)
		for _, file := range files {
			if len(file.Path) < len(ServerTLSDir) || file.Path[:len(ServerTLSDir)] != ServerTLSDir {
				t.Fatalf("file %q outside %s", file.Path, ServerTLSDir)
			}
		}
	})
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
