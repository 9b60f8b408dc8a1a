#!/usr/bin/env bash
# Writes docs/status-page.png, the picture the README shows: a simulated Rancher 2.5.7 server in
# the gap state, its status page in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(go run ./test/simctl env)"
RCE_E2E=1 go test -count=1 -run 'TestStatusPageInBrowser$' ./test/e2e/ -args -screenshot="$PWD/docs/status-page.png"
