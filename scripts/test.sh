#!/usr/bin/env bash
# The whole test suite: the Python tests of our moto extensions, then every Rust test in the
# workspace (unit, property, and integration tests against moto and a real kube-apiserver +
# etcd, or the API server double where a test needs its fault hooks or no real one is found).
# The real API server: KUBEBUILDER_ASSETS, else ../shared/envtest (scripts/envtest.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
assets="$(bash scripts/envtest.sh)"
if [[ -n "$assets" ]]; then
    export KUBEBUILDER_ASSETS="$assets"
else
    echo "test.sh: no real API server (KUBEBUILDER_ASSETS, ../shared/envtest): the tests that need one will fail; see scripts/envtest.sh" >&2
fi
bash scripts/setup-venv.sh
.venv/bin/python -m pytest tests/support -q
cargo test --workspace --locked
# The benchmark program at a small size (debug build, reusing the test build): every scenario
# must still run; the figures are not checked here (see BENCHMARKS.md).
cargo run --locked -p ecr-bench -- --quick
