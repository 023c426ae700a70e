# orderd's container image: static binaries on distroless, run as a non-root
# user, with orderd itself as PID 1 so that `docker stop` (SIGTERM) reaches
# its graceful shutdown.
#
#   docker build -t orderd:local .
#   docker run --rm -p 127.0.0.1:8080:8080 -v orderd-data:/var/lib/orderd \
#     -e ORDERD_API_KEYS=demo=change-me-before-use-0123456789 orderd:local
#
# cmd/orderd/dockerfile_test.go runs this file's `go build` lines in the
# repository, with this stage's ENV, and checks what they make (static, the
# HEALTHCHECK command, a graceful stop): keep each build one plain command.
# No BuildKit-only syntax (RUN --mount, COPY --chmod), so that the classic
# builder and Debian's docker-compose 1.29 build it too.

# The go.mod's exact toolchain, so the image is built by the Go the tests ran on.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Static: the final image has no libc, and without cgo Go's net and os/user
# packages use their pure-Go code.
ENV CGO_ENABLED=0
# The modules first, so that a change to the source does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# -trimpath: no paths of the build machine in the binary. -buildvcs=false:
# .git is not in the build context (.dockerignore). -ldflags=-s: no symbol
# table and no DWARF (22 MB instead of 32; panics keep their stack traces).
RUN go build -trimpath -buildvcs=false -ldflags=-s -o /out/orderd ./cmd/orderd
RUN go build -trimpath -buildvcs=false -ldflags=-s -o /out/orderctl ./cmd/orderctl
# The data volume's mount point, owned by the runtime user below: Docker
# fills a new named volume from the image's directory, owner included, and
# the final image has no shell to create or chown it.
RUN mkdir -p /out/data

# distroless static: CA certificates, tzdata and /etc/passwd, no shell, no
# package manager. Pinned by tag (Debian 12, the nonroot variant); its
# builds are rebuilt for security fixes under the same tag.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orderd /out/orderctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /var/lib/orderd
# distroless's "nonroot", numerically, so that a runtime that checks for a
# non-root user (Kubernetes runAsNonRoot) can tell without /etc/passwd.
USER 65532:65532
# Listening beyond loopback needs API keys (ORDERD_API_KEYS or
# ORDERD_API_KEYS_FILE) or ORDERD_ALLOW_UNAUTHENTICATED=true: orderd refuses
# to start otherwise. Without ORDERD_KAFKA_BROKERS it runs its embedded
# broker with its log under the volume.
ENV ORDERD_ADDR=0.0.0.0:8080 \
    ORDERD_DATA_DIR=/var/lib/orderd
VOLUME /var/lib/orderd
EXPOSE 8080
# No curl in the image: orderd probes its own /readyz (ORDERD_ADDR tells it
# where), with a 3 s timeout of its own inside Docker's 5 s. The start
# period covers the replay of the log before the first ready.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/orderd", "healthcheck"]
# Docker's default, said explicitly: orderd shuts down gracefully on SIGTERM.
STOPSIGNAL SIGTERM
# Exec form: orderd is PID 1 and receives the signal itself (a shell form
# would put /bin/sh in between, which this image does not even have).
ENTRYPOINT ["/usr/local/bin/orderd"]
