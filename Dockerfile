# syntax=docker/dockerfile:1
# The ecr-operator image: a static-enough Rust binary on distroless, running as non-root.
#
#   docker build -t ecr-operator:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t REGISTRY/ecr-operator:0.1.0 --push .
#
# Reproducible: the toolchain and base images are pinned by tag (pin them by digest in your
# registry mirror), dependencies by Cargo.lock (--locked). tests/chart.rs checks that every
# path copied below exists.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
ENV CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
# jemalloc, the binary's allocator, fixes its page size when it is built: on arm64, 64 KiB, which
# runs on kernels with 4 KiB pages (EKS's) and with 64 KiB pages alike.
ARG TARGETARCH

# 1. Dependencies only. The workspace manifests with empty targets: this layer, the slow one,
#    is rebuilt only when a Cargo.toml or Cargo.lock changes.
#    Cargo loads every workspace member's manifest and every [patch] source (vendor/), so all
#    of them are here; tests/chart.rs has cargo load this stage's files offline.
COPY Cargo.toml Cargo.lock ./
COPY vendor vendor
COPY crates/core/Cargo.toml crates/core/Cargo.toml
COPY crates/apiserver-double/Cargo.toml crates/apiserver-double/Cargo.toml
COPY crates/testbed/Cargo.toml crates/testbed/Cargo.toml
COPY crates/bench/Cargo.toml crates/bench/Cargo.toml
RUN mkdir -p src crates/core/src crates/apiserver-double/src crates/testbed/src crates/bench/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > crates/bench/src/main.rs \
    && touch src/lib.rs crates/core/src/lib.rs crates/apiserver-double/src/lib.rs crates/testbed/src/lib.rs \
    && if [ "$TARGETARCH" = arm64 ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
    && cargo build --release --locked --bin ecr-operator \
    && rm -rf src crates/core/src crates/apiserver-double/src crates/testbed/src crates/bench/src

# 2. The operator itself.
COPY src src
COPY crates crates
RUN touch src/main.rs src/lib.rs crates/core/src/lib.rs \
    && if [ "$TARGETARCH" = arm64 ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
    && cargo build --release --locked --bin ecr-operator \
    && install -D -m 0755 target/release/ecr-operator /out/ecr-operator

# glibc, libgcc and CA certificates, no shell; user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
# The release workflow (.github/workflows/release.yml) passes the tag's version and the commit;
# VERSION's default is the crate's (tests/chart.rs checks it).
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ecr-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Amazon ECR declaratively, with an admission webhook that keeps vulnerable images from running" \
      org.opencontainers.image.source="https://github.com/ecr-operator/ecr-operator" \
      org.opencontainers.image.url="https://github.com/ecr-operator/ecr-operator" \
      org.opencontainers.image.documentation="https://github.com/ecr-operator/ecr-operator/blob/main/docs/install.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=builder /out/ecr-operator /usr/local/bin/ecr-operator
USER nonroot:nonroot
# 8080: /metrics, /healthz, /readyz; 9443: the admission webhook (TLS).
EXPOSE 8080 9443
ENTRYPOINT ["ecr-operator", "run"]
