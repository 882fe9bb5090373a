"""kstatus's status computation for a custom resource, ported to Python for the tests.

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status) is what Flux's health checks
(kustomize-controller's `wait`/`healthChecks`, helm-controller's `wait`) use for a kind without a
health expression of its own (Flux builds it from fluxcd/cli-utils, a fork that keeps these
rules). For a custom resource it reads only generic properties; `Ready` is not one of them.
Ported from kubernetes-sigs/cli-utils:

- pkg/kstatus/status/status.go `Compute`: the generic checks decide when they can; else a
  built-in kind's rules (`GetLegacyConditionsFn`, pkg/kstatus/status/core.go: core and apps kinds
  only, never a custom resource); else Current ("Resource is current").
- pkg/kstatus/status/generic.go `checkGenericProperties`: a `metadata.deletionTimestamp` is
  Terminating; then `checkGeneration`; then the first condition in `status.conditions` that is
  `Reconciling=True` (InProgress) or `Stalled=True` (Failed), with its message.
- pkg/kstatus/status/generic.go `checkGeneration`: with both `metadata.generation` and
  `status.observedGeneration` present and different, InProgress ("<Kind> generation is N, but
  latest observed generation is M"); a missing field skips the check. The conditions' own
  observedGeneration is not read.

The condition types are the constants `ConditionReconciling` and `ConditionStalled` of
pkg/kstatus/status/status.go ("abnormal-true": absent means False).
"""

from __future__ import annotations

from dataclasses import dataclass

IN_PROGRESS = "InProgress"
FAILED = "Failed"
CURRENT = "Current"
TERMINATING = "Terminating"

RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class Result:
    status: str
    message: str


def compute(obj: dict) -> Result:
    """status.go `Compute`, for a custom resource (no legacy rules apply to its group)."""
    generic = check_generic_properties(obj)
    if generic is not None:
        return generic
    return Result(CURRENT, "Resource is current")


def check_generic_properties(obj: dict) -> Result | None:
    """generic.go `checkGenericProperties`."""
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return Result(TERMINATING, "Resource scheduled for deletion")
    generation = check_generation(obj)
    if generation is not None:
        return generation
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == RECONCILING and condition.get("status") == "True":
            return Result(IN_PROGRESS, condition.get("message", ""))
        if condition.get("type") == STALLED and condition.get("status") == "True":
            return Result(FAILED, condition.get("message", ""))
    return None


def check_generation(obj: dict) -> Result | None:
    """generic.go `checkGeneration`."""
    generation = (obj.get("metadata") or {}).get("generation")
    if generation is None:
        return None
    observed = (obj.get("status") or {}).get("observedGeneration")
    if observed is None or observed == generation:
        return None
    return Result(
        IN_PROGRESS,
        f"{obj.get('kind')} generation is {generation}, but latest observed generation is {observed}",
    )
