package rancher

import (
	"archive/tar"
	"errors"
	"io"
)

// EachEntry calls fn for each entry of a tar stream, in order, with the entry's content; fn
// returning io.EOF ends the walk early without an error. A broken stream's error is returned
// as the tar reader gives it.
func EachEntry(r io.Reader, fn func(hdr *tar.Header, content io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(hdr, tr); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}
