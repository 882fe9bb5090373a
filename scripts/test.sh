#!/usr/bin/env bash
# The whole test suite: the Python tests of our moto extensions, then every Rust test in the
# workspace (unit, property, and integration tests against moto and the API server double).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-venv.sh
.venv/bin/python -m pytest tests/support -q
cargo test --workspace --locked
# The benchmark program at a small size (debug build, reusing the test build): every scenario
# must still run; the figures are not checked here (see BENCHMARKS.md).
cargo run --locked -p ecr-bench -- --quick
