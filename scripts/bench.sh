#!/usr/bin/env bash
# The benchmarks: figures, not pass or fail. Installs wrk (the load generator) when missing;
# the end-to-end ones start a Docker engine like the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
go test -run XXX -bench . -benchmem ./collector/ ./rancher/
go test -run XXX -bench . -benchtime 1x -timeout 20m ./test/e2e/
