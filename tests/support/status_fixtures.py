"""Status fixtures of every ecr.operator.dev kind, shared by the tests of the tools that read
them: Argo CD's health script (test_argocd_health.py) and Flux's kstatus (test_kstatus.py).

The conditions are those the operator writes (src/controllers/status.rs `set_ready`, through
`set_ready_conditions` in crates/core/src/api/conditions.rs): `Ready`, plus kstatus's `Stalled`
(reasons that wait for a person) or `Reconciling` (every other reason) while not Ready, each
with its observedGeneration. Which reasons wait for a person is read from the Rust source, so
the fixtures follow the operator; the tests state what each reason must mean on their own.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GROUP = "ecr.operator.dev"
CONDITIONS_RS = ROOT / "crates/core/src/api/conditions.rs"

# What each Ready=False reason means for a person watching a GitOps tool. A reason the operator
# gains without a line here fails the tests that check every reason has an expectation.
WAITS_FOR_A_PERSON = {
    # A spec change, a grant, credentials, a secret, an emptied repository.
    "Invalid",
    "Conflict",
    "AccessDenied",
    "Forbidden",
    "LimitExceeded",
    "SecretNotFound",
    "RepositoryNotEmpty",
    # A RegistryTarget's role that STS refuses: a trust policy or an external id to fix.
    "AssumeRoleFailed",
}
RETRIED = {
    # The operator retries, or waits for something that converges by itself.
    "Progressing",
    "Throttled",
    "TransientError",
    "Deleting",
    "RepositoryNotReady",
    "NotReconciled",
    # A RegistryTarget's registry that does not answer, and the objects that wait for it.
    "Unreachable",
    "TargetNotReady",
}
NOT_READY_REASONS = sorted(WAITS_FOR_A_PERSON | RETRIED)


def reasons_in_source() -> list[str]:
    """The reason strings `Reason::as_str` returns (crates/core/src/api/conditions.rs)."""
    return re.findall(r'Reason::\w+ => "(\w+)"', CONDITIONS_RS.read_text())


def stalled_in_source() -> set[str]:
    """The reasons `Reason::waits_for_a_person` matches: the operator writes Stalled for them."""
    source = CONDITIONS_RS.read_text()
    body = source.split("pub fn waits_for_a_person(self) -> bool {", 1)[1].split("}", 1)[0]
    return set(re.findall(r"Reason::(\w+)", body))


def kinds_in_crds() -> list[str]:
    kinds = []
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(crd.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                assert doc["spec"]["group"] == GROUP
                kinds.append(doc["spec"]["names"]["kind"])
    return kinds


KINDS = kinds_in_crds()


def resource(kind: str, generation: int, status: dict | None, deleting: bool = False) -> dict:
    obj = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "team-a", "generation": generation},
        "spec": {},
    }
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-12-05T00:00:00Z"
    if status is not None:
        obj["status"] = status
    return obj


def condition(type_: str, status: str, reason: str, message: str, observed: int) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": observed,
        "lastTransitionTime": "2026-12-05T00:00:00Z",
    }


def ready(status: str, reason: str, message: str, observed: int, kstatus: bool = True) -> dict:
    """The status the operator writes for one outcome at generation `observed`; without
    `kstatus`, as operators before the kstatus conditions wrote it (Ready alone)."""
    conditions = [condition("Ready", status, reason, message, observed)]
    if kstatus and status != "True":
        type_ = "Stalled" if reason in stalled_in_source() else "Reconciling"
        conditions.append(condition(type_, "True", reason, message, observed))
    return {"observedGeneration": observed, "conditions": conditions}
