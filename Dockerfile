# Build: docker build --build-arg VERSION="$(git describe --tags --always)" \
#          --build-arg REVISION="$(git rev-parse HEAD)" -t rancher-cert-exporter .
FROM golang:1.26 AS build
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "-X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
    -o /out/rancher-cert-exporter ./cmd/rancher-cert-exporter

# Runtime: the static binary alone. It runs as nobody; give it the Docker socket's group
# (docker run --group-add "$(stat -c %g /var/run/docker.sock)") to read containers.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="rancher-cert-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the certificates of single-node Rancher servers" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/rancher-cert-exporter/rancher-cert-exporter" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/rancher-cert-exporter /bin/rancher-cert-exporter
USER 65534:65534
EXPOSE 9793
ENTRYPOINT ["/bin/rancher-cert-exporter"]
