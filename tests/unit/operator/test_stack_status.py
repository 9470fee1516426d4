from __future__ import annotations

import pytest
from tests.unit.operator.operator_fakes import SECRETS

from kongmasker.api import naming
from kongmasker.api.vocabulary import ComponentState, ConditionType, Phase, Reason
from kongmasker.core import status as st
from kongmasker.core.health import Health
from kongmasker.core.stack import Executor, observe, plan

pytestmark = pytest.mark.unit


def test_transition_time_kept_while_status_unchanged() -> None:
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    verdicts = st.ready_verdicts("ok")
    merged = {c.type: c for c in st.merge_conditions(old, verdicts, 3, "2026-01-01T00:00:00Z")}
    assert merged["Ready"].last_transition_time == "2020-01-01T00:00:00Z"
    assert merged["Degraded"].last_transition_time == "2026-01-01T00:00:00Z"
    assert merged["Ready"].observed_generation == 3
    assert set(merged) == {"Ready", "Progressing", "Degraded", "PreflightPassed"}


def test_ready_status_shape(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    ex = Executor(ref, spec, runtime, probes, SECRETS, settings)
    ex.apply(desired, plan(desired, observe(runtime, ref, desired)))
    comps = st.components(observe(runtime, ref, desired), ex.health)
    status = st.build(
        old_status={},
        verdicts=st.ready_verdicts("ok"),
        comps=comps,
        generation=2,
        endpoints={"proxy": "http://127.0.0.1:8085"},
    )
    body = status.to_dict()
    assert body["phase"] == "Ready" and body["readyComponents"] == "4/4"
    assert body["observedGeneration"] == 2
    assert body["components"]["kong"]["state"] == "Healthy"
    assert body["components"]["kong"]["containerName"] == naming.container_name(
        "default", "demo", "kong"
    )
    ready = next(c for c in body["conditions"] if c["type"] == "Ready")
    assert set(ready) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    events = st.transitions({"phase": "Progressing"}, status)
    assert [e.reason for e in events] == ["PhaseReady"] and not events[0].warning


def test_held_back_component_is_waiting(ref, runtime, desired) -> None:  # type: ignore[no-untyped-def]
    comps = st.components(observe(runtime, ref, desired), {}, held_back=["nginx"])
    assert comps["nginx"].state is ComponentState.WAITING
    assert comps["redis"].state is ComponentState.ABSENT


def test_preflight_failure_phase_and_event() -> None:
    verdicts = st.preflight_verdicts(Reason.SECRET_MISSING, "Secret default/x does not exist")
    status = st.build(old_status={}, verdicts=verdicts, comps={}, generation=1, endpoints={})
    assert status.phase is Phase.PENDING
    pre = next(c for c in status.conditions if c.type == ConditionType.PREFLIGHT_PASSED)
    assert (pre.status, pre.reason) == ("False", "SecretMissing")
    events = st.transitions({}, status)
    assert any(e.reason == "SecretMissing" and e.warning for e in events)


def test_paused_keeps_ready() -> None:
    old = [{"type": "Ready", "status": "True", "reason": "AllComponentsHealthy", "message": "m"}]
    verdicts = st.paused_verdicts(old)
    status = st.build(
        old_status={"conditions": old}, verdicts=verdicts, comps={}, generation=1, endpoints={}
    )
    assert status.phase is Phase.PAUSED
    assert {c.type: c.status for c in status.conditions}["Ready"] == "True"


def test_health_is_falsy_when_not_ok() -> None:
    assert not Health(False, "x") and Health(True, "y")


def test_progress_report_does_not_claim_the_new_generation() -> None:
    old = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "AllComponentsHealthy",
                "message": "m",
                "observedGeneration": 1,
                "lastTransitionTime": "2020-01-01T00:00:00Z",
            },
        ],
    }
    verdicts = st.progressing_verdicts(old["conditions"], Reason.STARTING, "backend: updating")
    status = st.build(old_status=old, verdicts=verdicts, comps={}, generation=2, endpoints={})
    st.keep_generation(status, old)
    by_type = {c.type: c for c in status.conditions}
    assert status.observed_generation == 1
    assert (by_type["Ready"].status, by_type["Ready"].observed_generation) == ("True", 1)
    assert (by_type["Progressing"].status, by_type["Progressing"].observed_generation) == (
        "True",
        2,
    )


def test_unprobed_running_container_keeps_its_last_health(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    ex = Executor(ref, spec, runtime, probes, SECRETS, settings)
    ex.apply(desired, plan(desired, observe(runtime, ref, desired)))
    observed = observe(runtime, ref, desired)
    first = {k: v.to_dict() for k, v in st.components(observed, ex.health).items()}
    again = st.components(observed, {}, previous=first)
    assert again["redis"].state is ComponentState.HEALTHY
    assert st.components(observed, {})["redis"].state is ComponentState.RUNNING
