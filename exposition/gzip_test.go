package exposition

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/internal/testenv"
)

// TestCompressedTextMakesOneGzipMember: the kept blocks and a request's own text make one gzip
// member that Go's reader (as Prometheus uses) and the gzip tool read as both texts, with the
// right CRC-32 and length; the plain path gives the same text.
func TestCompressedTextMakesOneGzipMember(t *testing.T) {
	random := make([]byte, 3000)
	rand.Read(random)
	for _, tt := range []struct{ name, head, rest string }{
		{"series", strings.Repeat(`cert_not_after_seconds{path="/x.crt"} 1.7e+09`+"\n", 20000), "# HELP up\nup 1\n"},
		{"empty head", "", "live only\n"},
		{"empty rest", "head only\n", ""},
		{"incompressible", hex.EncodeToString(random), strings.Repeat("z", 70000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := compress([]byte(tt.head))
			for i := 0; i < 2; i++ { // the kept blocks serve every request
				var out bytes.Buffer
				if err := c.writeGzip(&out, []byte(tt.rest)); err != nil {
					t.Fatal(err)
				}
				zr, err := gzip.NewReader(bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				zr.Multistream(false) // one member, not several
				got, err := io.ReadAll(zr)
				if err != nil || string(got) != tt.head+tt.rest {
					t.Fatalf("Go's gzip reader: %d bytes, %v", len(got), err)
				}
				{
					cmd := exec.Command(testenv.Tool(t, "gzip", "gzip"), "-d", "-c")
					cmd.Stdin = bytes.NewReader(out.Bytes())
					got, err := cmd.Output()
					if err != nil || string(got) != tt.head+tt.rest {
						t.Fatalf("gzip -d: %d bytes, %v", len(got), err)
					}
				}
			}
			var plain bytes.Buffer
			if err := c.writePlain(&plain); err != nil || plain.String() != tt.head {
				t.Fatalf("plain: %d bytes, %v", plain.Len(), err)
			}
		})
	}
}
