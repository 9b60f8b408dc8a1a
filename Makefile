BUILD_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION      ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS       := -X github.com/prometheus/common/version.Version=$(BUILD_VERSION) \
            -X github.com/prometheus/common/version.Revision=$(REVISION)
ARGS          ?=
VERSION       ?= 2.3

.PHONY: run build test lint demo bench screenshot dist

run:   ## run the exporter (ARGS="--rancher.container rancher" to pass flags)
	go run -ldflags "$(LDFLAGS)" ./cmd/rancher-cert-exporter $(ARGS)

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o rancher-cert-exporter ./cmd/rancher-cert-exporter

test:  ## the whole test suite, from a fresh machine (installs what is missing, starts a Docker engine)
	./scripts/test.sh

lint:  ## golangci-lint v2 with .golangci.yml
	./scripts/lint.sh

demo:  ## a simulated Rancher server in the gap state, and the exporter reading it (VERSION=2.3, 2.4, 2.5, 2.6, 2.7, 2.10, 2.11, 2.12, 2.13, 2.14 or 2.14.0)
	VERSION=$(VERSION) ./scripts/demo.sh

bench: ## the benchmarks (figures, not pass or fail)
	./scripts/bench.sh

dist:  ## dist/: tarballs, .deb and .rpm for linux amd64 and arm64, SHA256SUMS, sbom.cdx.json (reproducible)
	./scripts/dist.sh

screenshot: ## docs/status-page.png, the status page the README shows
	./scripts/screenshot.sh
