"""Flux's default health checks for every ecr.operator.dev kind: kstatus's rules (kstatus.py, a
port of sigs.k8s.io/cli-utils/pkg/kstatus/status) over the status fixtures the Argo CD health
test uses (status_fixtures.py), as the operator writes them: Ready plus kstatus's Reconciling or
Stalled while not Ready.

Expected, from issue #19: Current on Ready=True at the current generation; InProgress while a
generation is not yet observed or the operator retries; Failed, with the condition's message, on
a reason that waits for a person (the same reasons Argo CD shows as Degraded).
"""

from __future__ import annotations

import pytest

import kstatus
from status_fixtures import (
    KINDS,
    NOT_READY_REASONS,
    RETRIED,
    WAITS_FOR_A_PERSON,
    ready,
    reasons_in_source,
    resource,
    stalled_in_source,
)

EXPECTED_WHEN_NOT_READY = {
    reason: kstatus.FAILED if reason in WAITS_FOR_A_PERSON else kstatus.IN_PROGRESS
    for reason in NOT_READY_REASONS
}


def test_every_reason_has_an_expected_status():
    reasons = reasons_in_source()
    assert "Synced" in reasons
    missing = [r for r in reasons if r != "Synced" and r not in EXPECTED_WHEN_NOT_READY]
    assert missing == [], f"reasons without an expected kstatus: {missing}"


def test_the_operator_stalls_exactly_on_the_reasons_that_wait_for_a_person():
    assert stalled_in_source() == WAITS_FOR_A_PERSON
    assert not stalled_in_source() & RETRIED


@pytest.mark.parametrize("kind", KINDS)
def test_ready_at_the_current_generation_is_current(kind):
    got = kstatus.compute(resource(kind, 3, ready("True", "Synced", "matches the spec", 3)))
    assert got.status == kstatus.CURRENT


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reason", NOT_READY_REASONS)
def test_not_ready_follows_the_reason_with_its_message(kind, reason):
    message = f"{kind} is not ready: because {reason}"
    got = kstatus.compute(resource(kind, 2, ready("False", reason, message, 2)))
    assert got == kstatus.Result(EXPECTED_WHEN_NOT_READY[reason], message)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ready_status,reason", [("True", "Synced"), ("False", "Invalid")])
def test_a_generation_not_yet_observed_is_in_progress(kind, ready_status, reason):
    # Even a Ready=True or a Stalled of the previous generation says nothing about this one.
    got = kstatus.compute(resource(kind, 4, ready(ready_status, reason, "old", 3)))
    assert got.status == kstatus.IN_PROGRESS
    assert "generation is 4" in got.message and "observed generation is 3" in got.message


@pytest.mark.parametrize("kind", KINDS)
def test_deletion_is_terminating(kind):
    obj = resource(kind, 2, ready("False", "RepositoryNotEmpty", "images left", 2), deleting=True)
    assert kstatus.compute(obj).status == kstatus.TERMINATING


def test_what_kstatus_cannot_see():
    # kstatus reads no Ready of a custom resource: before the operator wrote Reconciling and
    # Stalled, a Ready=False object counted as Current (why they are written).
    legacy = ready("False", "Invalid", "bad", 2, kstatus=False)
    assert kstatus.compute(resource("Repository", 2, legacy)).status == kstatus.CURRENT
    # An object the operator has not reached yet carries no status: Current for kstatus, which
    # has no rule for it (Argo CD's script says Progressing).
    assert kstatus.compute(resource("Repository", 1, None)).status == kstatus.CURRENT
