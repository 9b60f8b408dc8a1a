package rancher

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// KubeconfigFile is where k3s writes its admin kubeconfig at every start: the server CA and
// the client-admin certificate and key inline, the server at https://127.0.0.1:6443.
const KubeconfigFile = "/etc/rancher/k3s/k3s.yaml"

// maxKubeconfigSize bounds what is read of it; it is a few kilobytes.
const maxKubeconfigSize = 1 << 20

// ReadKubeconfig reads the container's admin kubeconfig through the archive endpoint.
func ReadKubeconfig(ctx context.Context, eng Engine, id string) ([]byte, error) {
	res, err := eng.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: KubeconfigFile})
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, readerr.Newf(readerr.NotFound, "container %s has no %s: %v", id, KubeconfigFile, err)
		}
		return nil, dockerError(fmt.Sprintf("read %s from container %s", KubeconfigFile, id), err)
	}
	defer res.Content.Close()
	var data []byte
	var failed error
	err = EachEntry(res.Content, func(hdr *tar.Header, content io.Reader) error {
		switch {
		case hdr.Typeflag != tar.TypeReg:
			return nil
		case hdr.Size > maxKubeconfigSize:
			failed = readerr.Newf(readerr.TooLarge, "container %s: %s is %d bytes", id, KubeconfigFile, hdr.Size)
			return failed
		}
		var err error
		if data, err = io.ReadAll(content); err != nil {
			failed = readerr.Newf(readerr.Unreadable, "container %s: %s: %v", id, KubeconfigFile, err)
			return failed
		}
		return io.EOF // the file: done
	})
	switch {
	case failed != nil:
		return nil, failed
	case err != nil:
		return nil, readerr.Newf(readerr.Unreadable, "container %s: %s: %v", id, KubeconfigFile, err)
	case data == nil:
		return nil, readerr.Newf(readerr.NotFound, "container %s: %s is not a file", id, KubeconfigFile)
	}
	return data, nil
}
