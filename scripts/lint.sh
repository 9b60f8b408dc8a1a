#!/usr/bin/env bash
# golangci-lint v2 from the Go module proxy, with .golangci.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run ./...
