# syntax=docker/dockerfile:1
#
# aeserve: one static binary with the trained weights embedded, on scratch.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg REVISION=$(git rev-parse HEAD) -t aeserve .
#   docker run --rm --read-only -p 8080:8080 aeserve
#
# The build context holds no .git, so the version and revision come in as
# build arguments and are linked into prometheus/common/version, which
# --version and the aeserve_build_info metric read.
#
# The base images are build arguments, pinned to exact versions by default,
# so that a machine that cannot pull them (an air-gapped builder, or the
# project's CI, which has no registry) can pass stand-ins of its own and
# still build this same file.
ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
# The pure-Go build: no C library, so the binary is static and runs on
# scratch. See README, Deploy, for why it and not the OpenBLAS build.
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
ARG GOPROXY=https://proxy.golang.org,direct
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
# A vendor/ directory in the context, if any, is used as it is (go build
# does that by itself); otherwise modules come through GOPROXY. The caches
# only speed up rebuilds.
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    GOPROXY="$GOPROXY" go build \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$VERSION -X github.com/prometheus/common/version.Revision=$REVISION" \
      -o /out/aeserve ./cmd/server && \
    /out/aeserve --version

FROM scratch
COPY --from=build /out/aeserve /aeserve
# Not root, and nothing written at run time: the image works with a
# read-only root filesystem. 65532 is distroless's "nonroot".
USER 65532:65532
# 8080: the API (--addr). 9090: probes and metrics, when --metrics-addr=:9090.
EXPOSE 8080 9090
ENTRYPOINT ["/aeserve"]
