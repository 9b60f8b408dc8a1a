package rancher

import (
	"archive/tar"
	"context"
	"errors"
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
	tr := tar.NewReader(res.Content)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, readerr.Newf(readerr.NotFound, "container %s: %s is not a file", id, KubeconfigFile)
		}
		if err != nil {
			return nil, readerr.Newf(readerr.Unreadable, "container %s: %s: %v", id, KubeconfigFile, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > maxKubeconfigSize {
			return nil, readerr.Newf(readerr.TooLarge, "container %s: %s is %d bytes", id, KubeconfigFile, hdr.Size)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, readerr.Newf(readerr.Unreadable, "container %s: %s: %v", id, KubeconfigFile, err)
		}
		return data, nil
	}
}
