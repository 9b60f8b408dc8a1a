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

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// The simulator images. They sit in the rancher/rancher repository so that discovery by
// image name is exercised as on a real host, under tags no real release uses: on an
// operator's host they never replace a real Rancher image.
const (
	ImageV23 = "rancher/rancher:v2.3.1-sim" // renewal "never": Rancher v2.3 with k3s v0.8
	ImageNew = "rancher/rancher:v2.9.1-sim" // renewal "on-start": newer k3s
	// ImageNoRm lacks busybox: a helper container from it cannot run rm, for fault tests.
	ImageNoRm = "rancher/rancher:v2.3.1-sim-norm"
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

// BuildSimImages builds the simulator and tags both simulator images. Docker's layer cache
// makes a rebuild of unchanged input cheap.
func BuildSimImages(ctx context.Context, cli *client.Client) error {
	busybox, err := busyboxPath()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ranchersim-build")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sim, err := BuildStatic("./test/ranchersim", dir)
	if err != nil {
		return err
	}
	for image, renewal := range map[string]string{ImageV23: "never", ImageNew: "on-start", ImageNoRm: "never"} {
		copyBusybox := "COPY bin /bin\n"
		if image == ImageNoRm {
			copyBusybox = ""
		}
		dockerfile := "FROM scratch\n" +
			copyBusybox +
			"COPY ranchersim /usr/bin/ranchersim\n" +
			"ENV SIM_RENEWAL=" + renewal + "\n" +
			"VOLUME /var/lib/rancher\n" +
			"EXPOSE 80 443\n" +
			"ENTRYPOINT [\"/usr/bin/ranchersim\"]\n"
		buildCtx, err := ContextTar(map[string]string{"ranchersim": sim, "bin/busybox": busybox}, dockerfile,
			map[string]string{"bin/sh": "busybox", "bin/rm": "busybox"})
		if err != nil {
			return err
		}
		if err := BuildImage(ctx, cli, buildCtx, image); err != nil {
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

func busyboxPath() (string, error) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		if err := aptInstall("busybox-static"); err != nil {
			return "", err
		}
	}
	return "/bin/busybox", nil
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
