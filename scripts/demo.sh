#!/usr/bin/env bash
# The demo: the operator against moto (ECR) and the in-process Kubernetes API server double.
# Applies config/samples/, waits until they are Ready, prints them like `kubectl get ecr`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-venv.sh
cargo run --locked --example demo
