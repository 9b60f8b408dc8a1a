#!/usr/bin/env bash
# A newcomer's demo: one simulated Rancher server of release $VERSION (default 2.3) in the gap
# state (UI certificate renewed, k3s leaves 4 days from expiry) and the exporter reading it.
# Builds the simulator images locally (nothing is pulled) and touches no image or container it
# did not create.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-9793}"
version="${VERSION:-2.3}"

eval "$(scripts/sim env)"
scripts/sim build
read -r name ui_port < <(scripts/sim start --version "$version" --name "rce-demo-$RANDOM" --leaf-days 4 --ui-days 365)
trap 'echo; echo "removing $name"; docker rm -f -v "$name" >/dev/null' EXIT

cat <<MSG

Simulated Rancher $version server: container $name (UI on https://127.0.0.1:$ui_port)
  k3s leaves expire in 4 days; the UI certificate was renewed for a year.

  Metrics:  http://127.0.0.1:$port/metrics
  Try:      curl -s 127.0.0.1:$port/metrics | grep 'cert_not_after_seconds{.*ca="false"'
  Check:    go run ./cmd/rancher-cert-exporter check --rancher.container $name

Ctrl-C stops the exporter and removes the container.
MSG
go run ./cmd/rancher-cert-exporter --rancher.container "$name" --web.listen-address "127.0.0.1:$port"
