# coffer's container image: one image for every role (coffer server, console, snapshot, mirror).
# Built on Debian 12 in three stages: `build` compiles coffer, `rootfs` installs the Debian runtime
# packages it links and lays out the file tree of the image, and the final stage is that tree
# alone: the binary, its libraries, CA certificates and libmagic's database, no shell, no package
# manager. Why each choice: docs/IMAGE.md. scripts/build-image.sh builds it without a registry.
#
#   buildah bud --layers --format docker -t coffer:dev .      (docker build -t coffer:dev . too)

# A local Debian 12 base can stand in for the registry's (scripts/build-image.sh makes one).
ARG BASE_IMAGE=debian:bookworm-slim

# No step is alike in the two stages' starts: with --jobs 2 buildah would make both at once, as
# two cache entries, and the next build would find only one of them.
FROM ${BASE_IMAGE} AS build
# The build packages are scripts/install-deps.sh's "build" group, the list a developer installs:
# one list, and this layer stays cached until it changes.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive /src/scripts/install-deps.sh build \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# RelWithDebInfo is what `make build` and the tests build (-O2, assertions off); the symbols go,
# the code is the tested one.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null \
    && cmake --build /build -j"$(nproc)" --target coffer \
    && strip --strip-unneeded -o /coffer /build/coffer \
    && /coffer version

FROM ${BASE_IMAGE} AS rootfs
# The runtime packages of the libraries coffer links (readelf -d: NEEDED) and what they read:
# CA certificates for S3 over TLS, libmagic's compiled database for coffer mirror's content types.
# image-rootfs.sh fails the build when ldd finds a library none of them brought.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       libmicrohttpd12 liblmdb0 libssl3 libexpat1 libjansson4 libcurl4 libarchive13 \
       libzstd1 liblz4-1 zlib1g libcrypt1 libmagic1 libmagic-mgc ca-certificates >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/image-rootfs.sh /usr/local/sbin/image-rootfs.sh
COPY --from=build /coffer /coffer
RUN /usr/local/sbin/image-rootfs.sh /coffer /rootfs

FROM scratch
COPY --from=rootfs /rootfs/ /
# uid/gid 10001: above any host's own users, so the store's files never belong to one of them.
USER 10001:10001
WORKDIR /data
VOLUME /data
# 9000: coffer server (S3 API, /health, /metrics); 8080: coffer console.
EXPOSE 9000 8080
# In exec form, run by coffer itself: the image has no shell and no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/coffer", "health", "--timeout", "5s", "http://127.0.0.1:9000/health/ready"]
ENTRYPOINT ["/usr/local/bin/coffer"]
CMD ["server", "--address", "0.0.0.0:9000", "--data", "/data"]
# scripts/build-image.sh knows this image's earlier builds by the title.
LABEL org.opencontainers.image.title="coffer" \
      org.opencontainers.image.description="S3-compatible object server, snapshot tool, mirror and download site"
