#!/usr/bin/env bash
# Fails when a crate vendored under vendor/ (and named in `[patch.crates-io]` in Cargo.toml) is not
# the copy in the crate graph. Cargo itself only warns ("patch `cel v0.13.0 (...)` was not used in
# the crate graph") and builds the crates.io copy instead: that happens when what depends on the
# crate stops accepting the vendored version (a kube-cel upgrade asking for cel 0.14, say) or the
# vendored Cargo.toml's version is changed. The build and every test would still pass, only without
# the patch (for cel: the API server double compiling every `matches()` pattern per call again,
# vendor/cel/PATCHED.md). `cargo metadata` shows the graph as built: a patched crate is a package
# whose manifest is vendor/NAME/Cargo.toml (source null); an unused patch leaves none.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
metadata="$(mktemp)"
trap 'rm -f "$metadata"' EXIT
cargo metadata --format-version 1 --locked >"$metadata"
python3 - "$root" "$metadata" <<'PY'
import json, os, sys, tomllib

root = sys.argv[1]
with open(sys.argv[2]) as f:
    meta = json.load(f)
vendor = os.path.join(root, "vendor")
failures = []
checked = []
for entry in sorted(os.listdir(vendor)):
    manifest = os.path.join(vendor, entry, "Cargo.toml")
    if not os.path.isfile(manifest):
        continue
    with open(manifest, "rb") as f:
        package = tomllib.load(f)["package"]
    name, version = package["name"], package["version"]
    in_graph = [p for p in meta["packages"] if p["name"] == name]
    patched = [p for p in in_graph if os.path.realpath(p["manifest_path"]) == os.path.realpath(manifest)]
    others = [f"{p['name']} {p['version']} ({p['source'] or p['manifest_path']})" for p in in_graph if p not in patched]
    if not patched:
        failures.append(
            f"vendor/{entry} ({name} {version}) is not in the crate graph: the [patch.crates-io] entry "
            f"in Cargo.toml no longer applies (cargo only warns \"patch ... was not used in the crate "
            f"graph\"), so the unpatched copy is built instead"
            + (f": {', '.join(others)}" if others else "")
            + f". Bring vendor/{entry} to the version its dependents ask for (see "
            f"vendor/{entry}/PATCHED.md), or drop the patch and vendor/{entry} together.")
    elif others:
        failures.append(
            f"vendor/{entry} ({name} {version}) is patched in, but the graph also holds "
            f"{', '.join(others)}: whatever depends on that copy runs without the patch "
            f"(`cargo tree -i {name}@VERSION` shows who).")
    else:
        checked.append(f"{name} {version} (vendor/{entry})")
if failures:
    for f in failures:
        print(f"check-patches: {f}", file=sys.stderr)
    sys.exit(1)
print("check-patches: patched crates in the graph: " + (", ".join(checked) or "none vendored"))
PY
