"""Helm's own engine for tests/chart.rs, through helm-sdkpy (Python bindings around Helm's Go
library: the same template engine, sprig functions, values coalescing, schema validation, lint
rules and install / upgrade / uninstall code as the `helm` CLI).

    python helm_harness.py < request.json

The request is one JSON object; the answer is one JSON object on stdout:
``{"ok": true, ...}``, or ``{"ok": false, "error": "<Helm's message>"}`` when Helm refuses
(a template error, a schema violation, an object the API server rejects). Anything Helm's Go
code prints goes to stderr, so stdout holds the answer alone.

Actions (``"action"``):

- ``lint``: ``{"chart"}`` -> ``{"messages": [{"severity", "path"}], "seconds"}``, what
  ``helm lint CHART`` reports (with the chart's own values). Severities are Helm's: 1 info,
  2 warning, 3 error. helm-sdkpy 0.1.32 serializes each message's error as ``{}``, so only the
  severity and the file are known.
- ``render``: ``helm install`` into the API server of ``kubeconfig`` (with
  ``create_namespace``), read back what Helm applied, then ``helm uninstall``: the rendered
  objects of ``helm template``, but applied for real. helm-sdkpy has no dry-run or client-only
  install, and a real install proves more (the API server accepts every object). Answers like
  ``install``, plus ``uninstall_seconds``.
- ``install`` / ``upgrade``: ``{"kubeconfig", "namespace", "release", "chart", "values"}`` ->
  ``{"revision", "status", "manifests": [{"source", "content"}], "notes", "values",
  "seconds"}``; ``values`` in the answer are the release's computed values (Helm's coalescing of
  the chart's values.yaml, subcharts' and ``global`` included, with the request's).
- ``uninstall``: ``{"kubeconfig", "namespace", "release"}`` -> ``{"status", "seconds"}``.
- ``status``: -> ``{"found": bool, "status", "revision"}``.

``values`` in a request is a list of objects merged in order as ``helm -f a.yaml -f b.yaml``
merges its files (maps merge, anything else replaces; a null is kept and then deletes the
chart's default, as in Helm).

``chart`` may be an umbrella chart whose dependencies are ``file://`` paths: it is copied into a
temporary folder with each dependency copied into its ``charts/``, which is what ``helm
dependency build`` does for local dependencies (helm-sdkpy has no dependency action).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Helm's own files (registry and repository configuration, caches) under a throw-away home, never
# the user's: set before the library loads.
_HELM_HOME = tempfile.mkdtemp(prefix="helm-harness-")
for _var, _sub in (
    ("HELM_CACHE_HOME", "cache"),
    ("HELM_CONFIG_HOME", "config"),
    ("HELM_DATA_HOME", "data"),
):
    os.environ.setdefault(_var, os.path.join(_HELM_HOME, _sub))

import helm_sdkpy as helm  # noqa: E402
import yaml  # noqa: E402


def merge_values(files: list[dict[str, Any]]) -> dict[str, Any]:
    """Helm CLI's merge of several ``-f`` files (pkg/cli/values mergeMaps)."""

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = merge(out[k], v)
            else:
                out[k] = v
        return out

    merged: dict[str, Any] = {}
    for f in files:
        if not isinstance(f, dict):
            raise ValueError(f"values must be objects, got {f!r}")
        merged = merge(merged, f)
    return merged


_SOURCE = re.compile(r"^# Source: (.+)$")


def split_manifest(manifest: str) -> list[dict[str, str]]:
    """A release manifest (``---\\n# Source: chart/templates/x.yaml\\n...`` per object) as
    ``[{"source", "content"}]`` in Helm's order."""
    out: list[dict[str, str]] = []
    for doc in re.split(r"^---[ \t]*$", manifest, flags=re.MULTILINE):
        lines = doc.strip("\n").split("\n")
        source = ""
        body = []
        for line in lines:
            m = _SOURCE.match(line)
            if m and not source and not body:
                source = m.group(1).strip()
            else:
                body.append(line)
        content = "\n".join(body).strip()
        if content:
            out.append({"source": source, "content": content + "\n"})
    return out


def prepare_chart(chart: str, workdir: Path) -> str:
    """``chart`` itself, or a copy with its ``file://`` dependencies in ``charts/``."""
    src = Path(chart).resolve()
    deps = (yaml.safe_load((src / "Chart.yaml").read_text()) or {}).get("dependencies") or []
    if not deps:
        return str(src)
    dst = workdir / src.name
    shutil.copytree(src, dst, symlinks=False)
    for dep in deps:
        repo = dep.get("repository", "")
        if not repo.startswith("file://"):
            raise ValueError(f"{src}/Chart.yaml: only file:// dependencies, got {repo!r}")
        dep_src = (src / repo[len("file://") :]).resolve()
        target = dst / "charts" / dep.get("name", dep_src.name)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(dep_src, target)
    return str(dst)


def _config(req: dict[str, Any]) -> helm.Configuration:
    return helm.Configuration(namespace=req.get("namespace", "default"), kubeconfig=req["kubeconfig"])


async def _release_answer(config: helm.Configuration, release: dict[str, Any]) -> dict[str, Any]:
    name = release["name"]
    values = await helm.GetValues(config).run(name, all=True)
    info = release.get("info") or {}
    return {
        "release": name,
        "namespace": release.get("namespace"),
        "revision": release.get("version"),
        "status": info.get("status"),
        "manifests": split_manifest(release.get("manifest") or ""),
        "notes": info.get("notes") or "",
        "values": values,
    }


async def lint(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    chart = prepare_chart(req["chart"], workdir)
    started = time.monotonic()
    # Lint reads no cluster; the configuration only carries the namespace.
    config = helm.Configuration(namespace=req.get("namespace", "default"))
    result = await helm.Lint(config).run(chart)
    messages = [
        {"severity": m.get("Severity"), "path": m.get("Path")}
        for m in (result.get("Messages") or [])
    ]
    return {
        "messages": messages,
        "charts": result.get("TotalChartsLinted"),
        "seconds": time.monotonic() - started,
    }


async def install(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    chart = prepare_chart(req["chart"], workdir)
    config = _config(req)
    started = time.monotonic()
    release = await helm.Install(config).run(
        req["release"],
        chart,
        values=merge_values(req.get("values") or []),
        create_namespace=req.get("create_namespace", True),
        # No controllers run in the test's API server: nothing would ever become Ready.
        wait=False,
        timeout=req.get("timeout", 120),
        # Helm checks every object against the API server's OpenAPI schema first (unknown or
        # misplaced fields fail), as `helm install` does unless told not to.
        disable_openapi_validation=False,
    )
    answer = await _release_answer(config, release)
    answer["seconds"] = time.monotonic() - started
    return answer


async def upgrade(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    chart = prepare_chart(req["chart"], workdir)
    config = _config(req)
    started = time.monotonic()
    release = await helm.Upgrade(config).run(
        req["release"],
        chart,
        values=merge_values(req.get("values") or []),
        wait=False,
        timeout=req.get("timeout", 120),
        disable_openapi_validation=False,
        # `helm upgrade -f new.yaml`: the chart's defaults and the new values, not the old ones.
        reset_values=True,
    )
    answer = await _release_answer(config, release)
    answer["seconds"] = time.monotonic() - started
    return answer


async def uninstall(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    config = _config(req)
    started = time.monotonic()
    result = await helm.Uninstall(config).run(req["release"], wait=False, timeout=req.get("timeout", 120))
    info = (result.get("release") or {}).get("info") or {}
    return {"status": info.get("status"), "seconds": time.monotonic() - started}


async def status(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    config = _config(req)
    try:
        release = await helm.Status(config).run(req["release"])
    except helm.ReleaseError as e:
        if "not found" in str(e):
            return {"found": False}
        raise
    return {
        "found": True,
        "status": (release.get("info") or {}).get("status"),
        "revision": release.get("version"),
    }


async def render(req: dict[str, Any], workdir: Path) -> dict[str, Any]:
    # Never touch a release that was there before (ECR_OPERATOR_TEST_KUBECONFIG may name a
    # cluster of one's own): the uninstall below is for the release this render makes.
    if (await status(req, workdir))["found"]:
        raise helm.ReleaseError(
            f"release {req['release']} already exists in namespace {req.get('namespace')}: "
            "render installs and uninstalls a release of its own"
        )
    try:
        answer = await install(req, workdir)
    finally:
        # A failed install may leave a failed release behind: gone either way, so the next render
        # of the same release starts clean.
        started = time.monotonic()
        try:
            await helm.Uninstall(_config(req)).run(req["release"], wait=False, timeout=120)
        except helm.HelmError:
            pass
        uninstall_seconds = time.monotonic() - started
    answer["uninstall_seconds"] = uninstall_seconds
    return answer


ACTIONS = {
    "lint": lint,
    "render": render,
    "install": install,
    "upgrade": upgrade,
    "uninstall": uninstall,
    "status": status,
}


def main() -> int:
    # Helm's Go code may print: keep stdout for the answer.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    req = json.load(sys.stdin)
    action = ACTIONS.get(req.get("action"))
    if action is None:
        print(f"helm_harness: unknown action {req.get('action')!r}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="helm-chart-"))
    try:
        answer = asyncio.run(action(req, workdir))
        answer["ok"] = True
    except helm.HelmError as e:
        answer = {"ok": False, "error": str(e)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(_HELM_HOME, ignore_errors=True)
    json.dump(answer, out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
