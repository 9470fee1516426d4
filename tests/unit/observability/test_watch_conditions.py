"""How the health watch's conditions live next to the reconcile's: MaskingVerified survives a
reconcile's status write, an exhausted restart budget stays Degraded's reason while the stack
is degraded, and the watch's own patch leaves every other condition alone."""

from __future__ import annotations

import pytest

from kongmasker.api.vocabulary import ConditionType, Reason
from kongmasker.core.monitor import conditions_with
from kongmasker.core.status import Verdict, merge_conditions

pytestmark = pytest.mark.unit

T0, T1 = "2026-11-26T10:00:00Z", "2026-11-26T10:05:00Z"


def cond(
    type_: str, status: str, reason: str, message: str = "", at: str = T0
) -> dict[str, object]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
        "observedGeneration": 1,
    }


def reconcile_verdicts(degraded: bool) -> list[Verdict]:
    return [
        Verdict(ConditionType.READY, not degraded, "X", ""),
        Verdict(
            ConditionType.DEGRADED,
            degraded,
            "HealthGateFailed" if degraded else "AsExpected",
            "kong: HTTP 503",
        ),
    ]


def test_masking_verified_survives_a_reconcile() -> None:
    old = [
        cond("Ready", "True", "AllComponentsHealthy"),
        cond("MaskingVerified", "True", "CanaryPassed"),
    ]
    merged = merge_conditions(old, reconcile_verdicts(False), 2, T1)
    kept = [c for c in merged if c.type == "MaskingVerified"]
    assert [(c.status, c.reason, c.last_transition_time) for c in kept] == [
        ("True", "CanaryPassed", T0)
    ]


def test_budget_exhaustion_stays_the_reason_while_degraded_and_clears_when_healthy() -> None:
    old = [cond("Degraded", "True", str(Reason.RESTART_BUDGET_EXHAUSTED), "kong: 1 restart")]
    merged = {c.type: c for c in merge_conditions(old, reconcile_verdicts(True), 2, T1)}
    assert merged["Degraded"].reason == "RestartBudgetExhausted"
    assert merged["Degraded"].message == "kong: 1 restart"
    assert merged["Degraded"].last_transition_time == T0
    healthy = {c.type: c for c in merge_conditions(old, reconcile_verdicts(False), 2, T1)}
    assert (healthy["Degraded"].status, healthy["Degraded"].reason) == ("False", "AsExpected")


def test_the_watch_patch_changes_only_its_conditions() -> None:
    old = [
        cond("Ready", "True", "AllComponentsHealthy"),
        cond("PreflightPassed", "True", "PreflightSucceeded"),
        cond("MaskingVerified", "True", "CanaryPassed"),
    ]
    failed = Verdict(ConditionType.MASKING_VERIFIED, False, "UnmaskedIdentifierSeen", "1/52 ...")
    out = conditions_with(old, [failed], 1, T1)
    assert [c["type"] for c in out] == ["Ready", "PreflightPassed", "MaskingVerified"]
    assert out[:2] == old[:2]
    assert (out[2]["status"], out[2]["reason"], out[2]["lastTransitionTime"]) == (
        "False",
        "UnmaskedIdentifierSeen",
        T1,
    )
    again = conditions_with(out, [failed], 1, "2026-11-26T10:09:00Z")
    assert again[2]["lastTransitionTime"] == T1  # unchanged status keeps its transition time
    added = conditions_with(old[:2], [failed], 1, T1)
    assert [c["type"] for c in added] == ["Ready", "PreflightPassed", "MaskingVerified"]
