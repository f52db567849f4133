# syntax=docker/dockerfile:1
#
# wharf container image: a static binary on an empty base, running as an unprivileged user.
#
#   docker build -t wharf --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 2022:2022 -p 2121:2121 -p 50000-50019:50000-50019 \
#     -v ./packaging/docker:/etc/wharf:ro -v wharf-data:/var/lib/wharf/data \
#     -v wharf-state:/var/lib/wharf/state wharf
#
# See docs/docker.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Modules first: this layer is reused until go.mod, go.sum or the patched copies change
# (go.mod replaces github.com/pkg/sftp and wharf's x/crypto/ssh with folders of third_party).
COPY go.mod go.sum ./
COPY third_party ./third_party
RUN go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo, so no libc in the final image), reproducible (-trimpath), stripped.
# cmd/wharf/packaging_test.go runs this exact command, so keep it on one line.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/wharf ./cmd/wharf
# The folders the volumes mount, owned by the runtime user (the final image has no shell to
# create them), and a passwd entry so the user has a name.
RUN mkdir -p /rootfs/etc/wharf/scripts /rootfs/var/lib/wharf/data /rootfs/var/lib/wharf/state /rootfs/tmp \
 && cp packaging/docker/wharf.yaml /rootfs/etc/wharf/wharf.yaml \
 && cp packaging/docker/scripts/* /rootfs/etc/wharf/scripts/ \
 && chown -R 10001:10001 /rootfs/var/lib/wharf \
 && chmod 0700 /rootfs/var/lib/wharf/state \
 && chmod 1777 /rootfs/tmp \
 && echo 'wharf:x:10001:10001:wharf:/var/lib/wharf:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'wharf:x:10001:' > /rootfs/etc/group

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/ /
COPY --from=build /out/wharf /usr/local/bin/wharf
USER 10001:10001
# /etc/wharf: wharf.yaml and scripts/ (mount read-only); data: user files; state: host keys,
# TLS certificate, bans, the admin token.
VOLUME ["/etc/wharf", "/var/lib/wharf/data", "/var/lib/wharf/state"]
# SFTP, FTP (explicit TLS), the FTP passive range, metrics / health / admin API.
EXPOSE 2022 2121 50000-50019 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/wharf", "health", "-c", "/etc/wharf/wharf.yaml"]
ENTRYPOINT ["/usr/local/bin/wharf"]
CMD ["serve", "-c", "/etc/wharf/wharf.yaml"]
