# syntax=docker/dockerfile:1
# The ecr-operator image: a static-enough Rust binary on distroless, running as non-root.
#
#   docker build -t ecr-operator:0.1.0 .
#
# Reproducible: the toolchain and base images are pinned by tag (pin them by digest in your
# registry mirror), dependencies by Cargo.lock (--locked). tests/chart.rs checks that every
# path copied below exists.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
ENV CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never

# 1. Dependencies only. The workspace manifests with empty targets: this layer, the slow one,
#    is rebuilt only when a Cargo.toml or Cargo.lock changes.
#    Cargo loads every workspace member's manifest and every [patch] source (vendor/), so all
#    of them are here; tests/chart.rs has cargo load this stage's files offline.
COPY Cargo.toml Cargo.lock ./
COPY vendor vendor
COPY crates/apiserver-double/Cargo.toml crates/apiserver-double/Cargo.toml
COPY crates/testbed/Cargo.toml crates/testbed/Cargo.toml
COPY crates/bench/Cargo.toml crates/bench/Cargo.toml
RUN mkdir -p src crates/apiserver-double/src crates/testbed/src crates/bench/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > crates/bench/src/main.rs \
    && touch src/lib.rs crates/apiserver-double/src/lib.rs crates/testbed/src/lib.rs \
    && cargo build --release --locked --bin ecr-operator \
    && rm -rf src crates/apiserver-double/src crates/testbed/src crates/bench/src

# 2. The operator itself.
COPY src src
COPY crates crates
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin ecr-operator \
    && install -D -m 0755 target/release/ecr-operator /out/ecr-operator

# glibc, libgcc and CA certificates, no shell; user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/ecr-operator /usr/local/bin/ecr-operator
USER nonroot:nonroot
# 8080: /metrics, /healthz, /readyz; 9443: the admission webhook (TLS).
EXPOSE 8080 9443
ENTRYPOINT ["ecr-operator", "run"]
