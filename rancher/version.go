package rancher

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// Where a Rancher image says what it is: every release since 2.3.0 sets both variables in
// its Dockerfile (ENV X v… or ENV X=v…, which the engine reports alike); the OCI label exists
// from 2.10.0.
const (
	envServerVersion = "CATTLE_SERVER_VERSION"
	envK3sVersion    = "CATTLE_K3S_VERSION"
	labelVersion     = "org.opencontainers.image.version"
)

// Versions are the releases a container reports running; "" when it does not say, or says
// something that is not a release version (a dev build, "latest").
type Versions struct {
	Rancher string // e.g. v2.9.3
	K3s     string // e.g. v1.30.2+k3s2
}

// DetectVersions reads the versions from what docker inspect shows: the environment, then
// the image label, then the image tag. A tag such as "stable" or a digest says nothing.
func DetectVersions(env []string, labels map[string]string, image string) Versions {
	var v Versions
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		switch name {
		case envServerVersion:
			v.Rancher = releaseOrEmpty(value)
		case envK3sVersion:
			v.K3s = releaseOrEmpty(value)
		}
	}
	if v.Rancher == "" {
		v.Rancher = releaseOrEmpty(labels[labelVersion])
	}
	if v.Rancher == "" {
		v.Rancher = releaseOrEmpty(imageTag(image))
	}
	return v
}

func imageTag(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	if tagged, ok := named.(reference.Tagged); ok {
		return tagged.Tag()
	}
	return ""
}

// release is a version's major, minor and patch numbers.
type release [3]int

// releasePattern accepts v2.9.3, 2.9.3, v1.32.13+k3s1 and v2.3.1-rc2; not "latest" or "v2.9".
var releasePattern = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$`)

func parseRelease(s string) (release, bool) {
	m := releasePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return release{}, false
	}
	var r release
	for i := range r {
		r[i], _ = strconv.Atoi(m[i+1])
	}
	return r, true
}

func releaseOrEmpty(s string) string {
	if _, ok := parseRelease(s); !ok {
		return ""
	}
	return strings.TrimSpace(s)
}

// less compares releases by major, minor and patch; pre-release and build suffixes are
// ignored, so v2.5.7-rc1 behaves as v2.5.7.
func (r release) less(o release) bool {
	for i := range r {
		if r[i] != o[i] {
			return r[i] < o[i]
		}
	}
	return false
}

func (r release) atLeast(o release) bool { return !r.less(o) }

func (r release) String() string { return fmt.Sprintf("%d.%d.%d", r[0], r[1], r[2]) }

// OrUnknown is a version as the page and the log show it: "unknown" when it is not known.
func OrUnknown(version string) string {
	if version == "" {
		return "unknown"
	}
	return version
}
