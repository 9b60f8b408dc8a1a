package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// Profile is one simulated Rancher release: an image in the rancher/rancher repository, so
// that discovery by image name is exercised as on a real host, under a tag no release uses
// (on an operator's host it never replaces a real image); the environment and label the real
// image carries; and the simulator settings for what that release does (test/ranchersim).
type Profile struct {
	Image   string
	Rancher string // CATTLE_SERVER_VERSION
	K3s     string // CATTLE_K3S_VERSION
	// EnvEquals writes ENV X=v as the Dockerfiles do from 2.10.8 (ENV X v before); the engine
	// reports both alike.
	EnvEquals bool
	Label     bool // org.opencontainers.image.version, from 2.10
	Sim       []string
	NoRm      bool // no busybox: a helper container from it cannot run rm
}

// The simulated releases, from each release's package/Dockerfile and k3s's renewal rules.
var (
	V23 = Profile{Image: "rancher/rancher:v2.3.1-sim", Rancher: "v2.3.1", K3s: "v0.8.0",
		Sim: []string{"SIM_RENEWAL=never", "SIM_LEGACY_TLS=true", "SIM_TOKEN_SECRETS=3"}}
	V24 = Profile{Image: "rancher/rancher:v2.4.8-sim", Rancher: "v2.4.8", K3s: "v1.17.2+k3s1",
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_TOKEN_SECRETS=3"}}
	V257 = Profile{Image: "rancher/rancher:v2.5.7-sim", Rancher: "v2.5.7", K3s: "v1.18.8+k3s1",
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_AGENT=true", "SIM_CONTAINERD_MB=256",
			"SIM_WEBHOOK=never", "SIM_INTERNAL=true", "SIM_TOKEN_SECRETS=3"}}
	V260 = Profile{Image: "rancher/rancher:v2.6.0-sim", Rancher: "v2.6.0", K3s: "v1.21.3+k3s1",
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_AGENT=true", "SIM_CONTAINERD_MB=64",
			"SIM_WEBHOOK=never", "SIM_INTERNAL=true", "SIM_TOKEN_SECRETS=3"}}
	V275 = Profile{Image: "rancher/rancher:v2.7.5-sim", Rancher: "v2.7.5", K3s: "v1.26.4+k3s1",
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_AGENT=true", "SIM_CONTAINERD_MB=256",
			"SIM_WEBHOOK=renew", "SIM_INTERNAL=true", "SIM_OPAQUE_SECRETS=300"}}
	V2103 = Profile{Image: "rancher/rancher:v2.10.3-sim", Rancher: "v2.10.3", K3s: "v1.31.1+k3s1", EnvEquals: true, Label: true,
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_AGENT=true", "SIM_CONTAINERD_MB=64",
			"SIM_WEBHOOK=renew", "SIM_INTERNAL=true", "SIM_OPAQUE_SECRETS=300"}}
	V2113 = Profile{Image: "rancher/rancher:v2.11.3-sim", Rancher: "v2.11.3", K3s: "v1.32.1+k3s1", Label: true,
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_AGENT=true", "SIM_CONTAINERD_MB=64",
			"SIM_WEBHOOK=renew", "SIM_INTERNAL=true", "SIM_OPAQUE_SECRETS=300"}}
	V2123 = Profile{Image: "rancher/rancher:v2.12.3-sim", Rancher: "v2.12.3", K3s: "v1.33.1+k3s1", EnvEquals: true, Label: true,
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_RENEW_WINDOW_DAYS=120", "SIM_AGENT=true", "SIM_CONTAINERD_MB=256",
			"SIM_WEBHOOK=renew", "SIM_INTERNAL=true", "SIM_OPAQUE_SECRETS=300"}}
	// 2.13 and 2.14 as their Dockerfiles have them (rancher/rancher v2.13.8 and v2.14.4
	// package/Dockerfile: CATTLE_K3S_VERSION=v1.34.8+k3s1, v1.35.5+k3s1); 2.14.0 (v1.35.1+k3s1)
	// keeps a tls-rancher-internal that lacks the rancher-internal Service's ClusterIP
	// (rancher/rancher#54407), which 2.14.1 fixed.
	V2138 = Profile{Image: "rancher/rancher:v2.13.8-sim", Rancher: "v2.13.8", K3s: "v1.34.8+k3s1", EnvEquals: true, Label: true,
		Sim: []string{"SIM_RENEWAL=on-start", "SIM_RENEW_WINDOW_DAYS=120", "SIM_AGENT=true", "SIM_CONTAINERD_MB=64",
			"SIM_WEBHOOK=renew", "SIM_INTERNAL=true", "SIM_OPAQUE_SECRETS=300"}}
	V2140 = Profile{Image: "rancher/rancher:v2.14.0-sim", Rancher: "v2.14.0", K3s: "v1.35.1+k3s1", EnvEquals: true, Label: true, Sim: V2138.Sim}
	V2144 = Profile{Image: "rancher/rancher:v2.14.4-sim", Rancher: "v2.14.4", K3s: "v1.35.5+k3s1", EnvEquals: true, Label: true, Sim: V2138.Sim}
	// V23NoRm is V23 without busybox, for fault tests.
	V23NoRm = Profile{Image: "rancher/rancher:v2.3.1-sim-norm", Rancher: V23.Rancher, K3s: V23.K3s, Sim: V23.Sim, NoRm: true}

	// Profiles are the releases every per-release test runs on: each release of the field table
	// whose certificate files differ from the one before.
	Profiles = []Profile{V23, V24, V257, V260, V275, V2103, V2113, V2123, V2138, V2144}
	// images are every image the harness builds: the profiles, and the special ones.
	images = append(append([]Profile{}, Profiles...), V2140, V23NoRm)
)

// Image names, for tests that only need one.
var (
	ImageV23  = V23.Image
	ImageNew  = V275.Image // renewal on-start
	ImageNoRm = V23NoRm.Image
)

// ProfileNamed finds a profile by release, with or without "v" and patch: "2.5" or "v2.5.7".
func ProfileNamed(version string) (Profile, bool) {
	version = "v" + strings.TrimPrefix(version, "v")
	for _, p := range images {
		if p.Rancher == version || strings.HasPrefix(p.Rancher, version+".") {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileNames lists the simulated releases.
func ProfileNames() string {
	var names []string
	for _, p := range Profiles {
		names = append(names, p.Rancher)
	}
	return strings.Join(names, ", ")
}

// changes are the profile's image on top of the simulator's base image, as Dockerfile
// instructions: its release's environment and label. They are committed onto the base in one
// step, with no file copied: the vfs storage driver copies a whole file system per build step.
func (p Profile) changes() []string {
	sep := " "
	if p.EnvEquals {
		sep = "="
	}
	out := []string{"ENV CATTLE_SERVER_VERSION" + sep + p.Rancher, "ENV CATTLE_K3S_VERSION" + sep + p.K3s}
	for _, kv := range p.Sim {
		out = append(out, "ENV "+kv)
	}
	if p.Label {
		out = append(out, `LABEL "org.opencontainers.image.version"=`+p.Rancher)
	}
	return append(out, "LABEL "+ImageLabel+"=true", "VOLUME /var/lib/rancher", "EXPOSE 80 443 6443", `ENTRYPOINT ["/usr/bin/ranchersim"]`)
}

// The base images: the simulator with busybox (sh, rm), and without it for the fault tests.
const (
	baseImage     = "rce-ranchersim-base:latest"
	baseImageNoRm = "rce-ranchersim-base:norm"
)

// ImageLabel marks every image and container the harness makes.
const ImageLabel = "io.rancher-cert-exporter.test"

// RepoRoot is the module root, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildStatic builds a package of this module as a static linux binary into dir.
func BuildStatic(pkg, dir string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}

// BuildSimImages builds the simulator and tags every profile's image. Docker's layer cache
// makes a rebuild of unchanged input cheap.
func BuildSimImages(ctx context.Context, cli *client.Client) error {
	dir, err := os.MkdirTemp("", "ranchersim-build")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sim, err := BuildStatic("./test/ranchersim", dir)
	if err != nil {
		return err
	}
	for tag, dockerfile := range map[string]string{
		baseImage:     "FROM scratch\nCOPY bin /bin\nCOPY ranchersim /usr/bin/ranchersim\nENTRYPOINT [\"/usr/bin/ranchersim\"]\n",
		baseImageNoRm: "FROM scratch\nCOPY ranchersim /usr/bin/ranchersim\nENTRYPOINT [\"/usr/bin/ranchersim\"]\n",
	} {
		buildCtx, err := ContextTar(map[string]string{"ranchersim": sim, "bin/busybox": busybox}, dockerfile,
			map[string]string{"bin/sh": "busybox", "bin/rm": "busybox"})
		if err != nil {
			return err
		}
		if err := BuildImage(ctx, cli, buildCtx, tag); err != nil {
			return err
		}
	}
	for _, p := range images {
		if err := commitImage(ctx, cli, p); err != nil {
			return err
		}
	}
	return nil
}

// commitImage makes the profile's image: a container of its base, never started, committed
// with the profile's changes.
func commitImage(ctx context.Context, cli *client.Client, p Profile) error {
	base := baseImage
	if p.NoRm {
		base = baseImageNoRm
	}
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: base, Labels: map[string]string{ImageLabel: "true"}}})
	if err != nil {
		return fmt.Errorf("image %s: %w", p.Image, err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true}) //nolint:errcheck // best effort
	if _, err := cli.ContainerCommit(ctx, c.ID, client.ContainerCommitOptions{Reference: p.Image, Changes: p.changes()}); err != nil {
		return fmt.Errorf("image %s: %w", p.Image, err)
	}
	return nil
}

// BuildImage builds a context tar (with a Dockerfile) into a labelled image.
func BuildImage(ctx context.Context, cli *client.Client, buildCtx io.Reader, tag string) error {
	res, err := cli.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Labels: map[string]string{ImageLabel: "true"},
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer res.Body.Close()
	var log bytes.Buffer
	if err := jsonmessage.DisplayStream(res.Body, &log); err != nil {
		return fmt.Errorf("build %s: %w\n%s", tag, err, log.String())
	}
	return nil
}

// busybox gives the images sh and rm (Debian's busybox-static).
const busybox = "/bin/busybox"

// EnsureBusybox installs busybox-static when it is missing: for scripts/sim, never from a test.
func EnsureBusybox() error {
	if _, err := os.Stat(busybox); err == nil {
		return nil
	}
	return aptInstall("busybox-static")
}

// ContextTar makes a build context of host files (by name in the context), a Dockerfile and
// symlinks (name to target).
func ContextTar(files map[string]string, dockerfile string, links map[string]string) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", 0o644, []byte(dockerfile)); err != nil {
		return nil, err
	}
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := add(name, 0o755, data); err != nil {
			return nil, err
		}
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink, Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}
