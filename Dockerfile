# Build: docker build -t rancher-cert-exporter .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/rancher-cert-exporter ./cmd/rancher-cert-exporter

# Runtime: the static binary alone. It runs as nobody; give it the Docker socket's group
# (docker run --group-add "$(stat -c %g /var/run/docker.sock)") to read containers.
FROM scratch
COPY --from=build /out/rancher-cert-exporter /bin/rancher-cert-exporter
USER 65534:65534
EXPOSE 9793
ENTRYPOINT ["/bin/rancher-cert-exporter"]
