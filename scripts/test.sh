#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with Go: installs the Debian packages the
# tests use, starts a private Docker engine when none answers (and stops it again), then runs
# the linter and every Go test with RCE_E2E=1, under which a missing tool fails instead of
# skipping. A plain `go test ./...` never installs or starts anything.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in dockerd:docker.io docker:docker.io busybox:busybox-static openssl:openssl promtool:prometheus \
  prometheus-alertmanager:prometheus-alertmanager chromium:chromium kubectl:kubernetes-client gzip:gzip \
  lintian:lintian rpm:rpm file:file systemd-analyze:systemd dpkg-deb:dpkg git:git; do
  command -v "${tool%%:*}" >/dev/null || [ -x "/bin/${tool%%:*}" ] || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi

# The engine the tests use: the one DOCKER_HOST or the default socket names, else a private one.
started=""
if ! docker info >/dev/null 2>&1; then
  eval "$(go run ./test/simctl env)"
  started=yes
fi
trap '[ -n "$started" ] && go run ./test/simctl stop-engine' EXIT
export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}" RCE_E2E=1

go vet ./...
./scripts/lint.sh
# The packages, then the end-to-end package alone: its timing tests (a restart policy racing a
# job's start) must not share the two cores with a cross-compile. Independent end-to-end tests run
# side by side (each on its own containers and ports); each package's time is printed at the end,
# longest first.
log=$(mktemp)
set +e
go test -count=1 -timeout 35m -parallel 8 $(go list ./... | grep -v /test/e2e$) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
go test -count=1 -timeout 35m -parallel 8 ./test/e2e/ 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
set -e
echo
echo "time per package, longest first (whole run: ${SECONDS}s):"
awk '($1 == "ok" || $1 == "FAIL") && $NF ~ /^[0-9.]+s$/ { t = $NF; sub(/s$/, "", t); printf "%9.1fs  %-4s %s\n", t, $1, $2 }' "$log" | sort -rn
rm -f "$log"
exit "$status"
