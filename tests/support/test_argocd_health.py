"""Argo CD health for every ecr.operator.dev kind: config/argocd/health.lua run by a real Lua 5.1
interpreter (lupa; Argo CD runs health scripts in gopher-lua, a Lua 5.1), over status fixtures of
every reason the operator writes, and the kustomization that puts it under each kind's key.

Expected health, from the contract Argo CD users asked for (issue #19): Healthy on Ready=True at
the current generation; Progressing while the generation is not yet observed or while the reason
is one the operator retries or waits out on its own; Degraded, with the condition's message, on a
reason that waits for a person.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from lupa import lua51

from status_fixtures import (
    GROUP,
    KINDS,
    NOT_READY_REASONS,
    ROOT,
    WAITS_FOR_A_PERSON,
    ready,
    reasons_in_source,
    resource,
)

SCRIPT = (ROOT / "config/argocd/health.lua").read_text()

# What each Ready=False reason shows in Argo CD (status_fixtures says which wait for a person).
EXPECTED_WHEN_NOT_READY = {
    reason: "Degraded" if reason in WAITS_FOR_A_PERSON else "Progressing"
    for reason in NOT_READY_REASONS
}


def health(obj: dict) -> dict:
    """Runs the script as Argo CD does: `obj` is a global, the script returns a table."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return {"status": result["status"], "message": result["message"]}


def test_the_crds_are_all_there():
    assert len(KINDS) == 12, KINDS


def test_every_reason_has_an_expected_health():
    reasons = reasons_in_source()
    assert "Synced" in reasons
    missing = [r for r in reasons if r != "Synced" and r not in EXPECTED_WHEN_NOT_READY]
    assert missing == [], f"reasons without an expected Argo CD health: {missing}"


@pytest.mark.parametrize("kind", KINDS)
def test_ready_at_the_current_generation_is_healthy(kind):
    got = health(resource(kind, 3, ready("True", "Synced", "repository matches the spec", 3)))
    assert got == {"status": "Healthy", "message": "Synced: repository matches the spec"}


@pytest.mark.parametrize("kind", KINDS)
def test_no_status_yet_is_progressing(kind):
    assert health(resource(kind, 1, None))["status"] == "Progressing"
    assert health(resource(kind, 1, {"observedGeneration": 1}))["status"] == "Progressing"
    assert health(resource(kind, 1, {"conditions": []}))["status"] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ready_status,reason", [("True", "Synced"), ("False", "Invalid")])
def test_a_generation_not_yet_observed_is_progressing(kind, ready_status, reason):
    # Even a Ready=True or an Invalid of the previous generation says nothing about this one.
    got = health(resource(kind, 4, ready(ready_status, reason, "old", 3)))
    assert got["status"] == "Progressing"
    assert "4" in got["message"] and "3" in got["message"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reason", sorted(EXPECTED_WHEN_NOT_READY))
def test_not_ready_follows_the_reason_with_its_message(kind, reason):
    message = f"{kind} is not ready: because {reason}"
    got = health(resource(kind, 2, ready("False", reason, message, 2)))
    assert got == {"status": EXPECTED_WHEN_NOT_READY[reason], "message": f"{reason}: {message}"}


def test_condition_generation_wins_over_the_status_field():
    # The condition's observedGeneration says which generation Ready describes.
    status = ready("True", "Synced", "ok", 2)
    status["observedGeneration"] = 3
    assert health(resource("Repository", 3, status))["status"] == "Progressing"


def test_the_kustomization_puts_the_script_under_every_kind():
    kubectl = shutil.which("kubectl") or str(ROOT / ".venv/bin/kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "config/argocd")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cm = yaml.safe_load(rendered)
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["metadata"]["namespace"] == "argocd"
    keys = {f"resource.customizations.health.{GROUP}_{kind}" for kind in KINDS}
    assert set(cm["data"]) == keys
    assert all(cm["data"][k] == SCRIPT for k in keys)
