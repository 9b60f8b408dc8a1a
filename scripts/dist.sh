#!/usr/bin/env bash
# make dist: release files in dist/ — static binaries for linux amd64 and arm64 as tarballs,
# .deb and .rpm with the systemd unit (nfpm), SHA256SUMS and a CycloneDX SBOM. Needs only Go and
# the module proxy. Everything takes the commit's time (SOURCE_DATE_EPOCH), so two runs on one
# commit give byte-identical files.
set -euo pipefail
cd "$(dirname "$0")/.."

# The version, from git describe --tags --always, as the packagers take it: the tag without its
# v, "-" as "+" (v1.2.3-4-gabc → 1.2.3+4+gabc); before the first tag 0.0.0+git<commit>.
if describe=$(git describe --tags 2>/dev/null); then
  version=${describe#v}
  version=${version//-/+}
else
  version=0.0.0+git$(git describe --always)
fi
revision=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
build_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d-%H:%M:%S)
module=github.com/prometheus/common/version
ldflags="-s -w -X $module.Version=$version -X $module.Revision=$revision -X $module.Branch=release \
  -X $module.BuildUser=rancher-cert-exporter -X $module.BuildDate=$build_date"

rm -rf dist
mkdir -p dist/.work
work=dist/.work
# Files enter archives with the commit's time, owned by root, in name order.
tarball() { # dir archive
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$(dirname "$1")" -cf - "$(basename "$1")" | gzip -n -9 >"$2"
}

# The Debian changelog the package carries, dated from the commit.
cat >"$work/changelog.Debian" <<CHANGELOG
rancher-cert-exporter ($version-1) unstable; urgency=medium

  * Built from commit $(git rev-parse --short=12 HEAD); CHANGELOG.md says what changed.

 -- rancher-cert-exporter maintainers <maintainers@rancher-cert-exporter.invalid>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG
touch -d "@$SOURCE_DATE_EPOCH" "$work/changelog.Debian"
gzip -n -9 -c "$work/changelog.Debian" >"$work/changelog.Debian.gz"

for arch in amd64 arm64; do
  name=rancher-cert-exporter_${version}_linux_$arch
  mkdir -p "$work/$name"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false -ldflags "$ldflags" \
    -o "$work/$name/rancher-cert-exporter" ./cmd/rancher-cert-exporter
  cp LICENSE README.md "$work/$name/"
  chmod 0755 "$work/$name/rancher-cert-exporter"
  chmod 0644 "$work/$name/LICENSE" "$work/$name/README.md"
  tarball "$work/$name" "dist/$name.tar.gz"
  for packager in deb rpm; do
    VERSION=$version ARCH=$arch BINARY=$work/$name/rancher-cert-exporter CHANGELOG=$work/changelog.Debian.gz \
      go tool nfpm package --config packaging/nfpm.yaml --packager "$packager" --target dist/ >/dev/null
  done
done

# The SBOM of the binary's modules (the same for both architectures), without the random serial
# and the time, which would make it differ per run.
CGO_ENABLED=0 GOOS=linux go tool cyclonedx-gomod app -json -licenses -noserial -notimestamp \
  -main cmd/rancher-cert-exporter -output dist/sbom.cdx.json . 2>/dev/null

rm -rf "$work"
(cd dist && sha256sum -- * >SHA256SUMS)
ls -l dist
