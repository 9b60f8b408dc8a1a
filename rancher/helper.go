package rancher

import (
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Labels of the short-lived helper containers a rotation runs from a Rancher image: the role
// (RoleHelper; discovery never mistakes them for Rancher servers), the job and the container it
// works on.
const (
	RoleLabel      = "io.rancher-cert-exporter.role"
	RoleHelper     = "helper"
	LabelJob       = "io.rancher-cert-exporter.job"
	LabelContainer = "io.rancher-cert-exporter.container"
)

// HelperSpec is a helper container that runs cmd for a job on c's files: c's image, which is
// local (nothing is pulled), with c's volumes, no network and no shell.
func HelperSpec(c Container, jobID string, cmd []string) client.ContainerCreateOptions {
	return client.ContainerCreateOptions{
		Config: &container.Config{
			Image:           c.ImageID,
			Entrypoint:      cmd[:1],
			Cmd:             cmd[1:],
			Labels:          map[string]string{RoleLabel: RoleHelper, LabelJob: jobID, LabelContainer: c.ID},
			NetworkDisabled: true,
		},
		HostConfig: &container.HostConfig{VolumesFrom: []string{c.ID}, NetworkMode: "none"},
	}
}
