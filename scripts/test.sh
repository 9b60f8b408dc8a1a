#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with Go: installs the Debian packages
# the tests use (Docker, busybox, openssl, Prometheus, promtool, Alertmanager), then runs every
# Go test. The Docker engine is started by the tests' harness
# (test/harness) when none answers, and stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v openssl >/dev/null || need+=(openssl)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v gzip >/dev/null || need+=(gzip)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

go vet ./...
go test -count=1 -timeout 15m ./...
