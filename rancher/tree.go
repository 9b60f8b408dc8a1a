package rancher

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/rancher-cert-exporter/rancher-cert-exporter/readerr"
)

// ReadTree reads the k3s certificate files of a container through the archive endpoint: no
// exec and no shell, so it works on running, restarting and stopped containers alike. A
// missing agent directory is normal (older releases have none) and yields no files.
func ReadTree(ctx context.Context, cli *client.Client, id string) ([]File, error) {
	var files []File
	for _, dir := range TreeDirs {
		res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dir})
		if err != nil {
			if errdefs.IsNotFound(err) {
				if dir == AgentDir {
					continue
				}
				return nil, readerr.Newf(readerr.NotFound, "container %s has no %s: %v", id, dir, err)
			}
			return nil, dockerError(fmt.Sprintf("read %s from container %s", dir, id), err)
		}
		got, err := ReadArchive(res.Content, dir)
		res.Content.Close()
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		files = append(files, got...)
	}
	return files, nil
}
