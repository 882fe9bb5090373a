#!/usr/bin/env bash
# The dependency policy of deny.toml: licenses, bans and sources of every crate in the workspace's
# graph (`cargo deny check licenses bans sources`). `advisories` is not checked: the RustSec
# database cannot be fetched here (deny.toml).
#
# cargo-deny at a pinned version, the first found at that version of: CARGO_DENY (a path);
# target/tools/bin/cargo-deny; the machine's copy in ~/.cache/ecr-operator (XDG_CACHE_HOME),
# which outlives a fresh clone such as CI's; `cargo-deny` on PATH. Else it is built from crates.io
# into target/tools (`cargo install --locked`: the source and lock file its authors publish). The
# copy in target/tools is also put in the machine's cache. That build is the cost: 530 s of CPU, 7.5 min on two cores
# shared with another build (some 5-6 min on idle ones), once per machine.
set -euo pipefail
version=0.20.2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$root/target/tools"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator/cargo-deny-$version"

at_version() { [[ -x "$1" && "$("$1" --version 2>/dev/null)" == "cargo-deny $version" ]]; }

deny="${CARGO_DENY:-}"
if [[ -z "$deny" ]]; then
    if at_version "$tools/bin/cargo-deny"; then
        deny="$tools/bin/cargo-deny"
    elif at_version "$cache"; then
        deny="$cache"
    elif on_path="$(command -v cargo-deny)" && at_version "$on_path"; then
        deny="$on_path"
    else
        echo "deny.sh: building cargo-deny $version into target/tools (once per machine)" >&2
        start=$SECONDS
        # cargo-deny's own release profile (fat LTO, one codegen unit): turning both off and
        # opt-level down to 1 saved only 11 % of the CPU time, the dependencies being the bulk.
        cargo install --locked --force --version "=$version" --root "$tools" cargo-deny
        echo "deny.sh: cargo-deny $version built in $((SECONDS - start)) s" >&2
        deny="$tools/bin/cargo-deny"
    fi
    if [[ "$deny" == "$tools/bin/cargo-deny" ]] && ! at_version "$cache"; then
        mkdir -p "$(dirname "$cache")"
        cp "$deny" "$cache.tmp.$$" && mv "$cache.tmp.$$" "$cache"
    fi
fi
"$deny" --version
# Without the inclusion graphs (1400 lines for the duplicate-version warnings alone); run the same
# command without --hide-inclusion-graph to see which crates pull a reported one in.
"$deny" --locked --workspace check --hide-inclusion-graph licenses bans sources
