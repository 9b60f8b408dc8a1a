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
	// V23NoRm is V23 without busybox, for fault tests.
	V23NoRm = Profile{Image: "rancher/rancher:v2.3.1-sim-norm", Rancher: V23.Rancher, K3s: V23.K3s, Sim: V23.Sim, NoRm: true}

	// Profiles are the releases every per-release test runs on: each release of the field table
	// whose certificate files differ from the one before.
	Profiles = []Profile{V23, V24, V257, V260, V275, V2103, V2113, V2123}
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
	for _, p := range Profiles {
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

// dockerfile is the profile's image: the simulator and busybox FROM scratch.
func (p Profile) dockerfile() string {
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	if !p.NoRm {
		b.WriteString("COPY bin /bin\n")
	}
	b.WriteString("COPY ranchersim /usr/bin/ranchersim\n")
	sep := " "
	if p.EnvEquals {
		sep = "="
	}
	b.WriteString("ENV CATTLE_SERVER_VERSION" + sep + p.Rancher + "\n")
	b.WriteString("ENV CATTLE_K3S_VERSION" + sep + p.K3s + "\n")
	for _, kv := range p.Sim {
		b.WriteString("ENV " + kv + "\n")
	}
	if p.Label {
		b.WriteString(`LABEL "org.opencontainers.image.version"=` + p.Rancher + "\n")
	}
	b.WriteString("VOLUME /var/lib/rancher\nEXPOSE 80 443 6443\nENTRYPOINT [\"/usr/bin/ranchersim\"]\n")
	return b.String()
}

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
	for _, p := range append(Profiles, V23NoRm) {
		buildCtx, err := ContextTar(map[string]string{"ranchersim": sim, "bin/busybox": busybox}, p.dockerfile(),
			map[string]string{"bin/sh": "busybox", "bin/rm": "busybox"})
		if err != nil {
			return err
		}
		if err := BuildImage(ctx, cli, buildCtx, p.Image); err != nil {
			return err
		}
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
