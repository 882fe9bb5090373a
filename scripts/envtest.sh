#!/usr/bin/env bash
# Prints the folder that holds a real kube-apiserver and etcd for the tests (the envtest
# convention, KUBEBUILDER_ASSETS), unpacking ../shared/envtest/*.xz into target/envtest when
# KUBEBUILDER_ASSETS is not set. Prints nothing when there is none: the tests then run against
# the API server double, and the tests that need a real server fail saying how to get one
# (controller-runtime's setup-envtest: `setup-envtest use -p path 1.36.x`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
fi
shared="$root/../shared/envtest"
target="$root/target/envtest"
[[ -f "$shared/kube-apiserver.xz" && -f "$shared/etcd.xz" ]] || exit 0
mkdir -p "$target"
for b in kube-apiserver etcd; do
    if [[ ! -x "$target/$b" || "$shared/$b.xz" -nt "$target/$b" ]]; then
        xz -dc "$shared/$b.xz" >"$target/$b.tmp"
        chmod +x "$target/$b.tmp"
        mv "$target/$b.tmp" "$target/$b"
    fi
done
echo "$target"
