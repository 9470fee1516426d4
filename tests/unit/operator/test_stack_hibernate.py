"""spec.hibernated in one reconcile: the running stack is stopped in reverse order and its
containers removed, the volume is kept, the status says Hibernated for every component; a
second reconcile finds nothing to stop and writes no second Event.

The engine is the in-memory FakeRuntime (the real one: tests/e2e/test_kubectl_plugin.py)."""

from __future__ import annotations

import pytest
from tests.unit.operator.operator_fakes import SPEC, FakeProbes, FakeRuntime
from tests.unit.operator.test_exit_budget import Secrets, Status, running_stack

from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import STOP_ORDER
from kongmasker.config import Settings
from kongmasker.core import reconcile as core
from kongmasker.core.render import StackRef

pytestmark = pytest.mark.unit


def test_hibernation_stops_in_reverse_removes_containers_and_says_so(
    runtime: FakeRuntime, probes: FakeProbes, ref: StackRef, spec: StackSpec, settings: Settings
) -> None:
    running_stack(runtime, ref, spec)
    status = Status()
    deps = core.Deps(lambda url, tls: runtime, probes, Secrets(), status, settings)
    obj = core.StackObject(ref, 2, {**SPEC, "hibernated": True}, {"phase": "Ready"}, {})
    result = core.reconcile(obj, deps)
    assert result.error is None
    assert runtime.containers == {}
    assert not [e for e in runtime.log if e[0] == "remove_volume"]
    stops = [e[1] for e in runtime.log if e[0] == "stop"]
    assert stops == [ref.container_name(c) for c in STOP_ORDER]
    body = status.patches[-1]
    assert body["phase"] == "Hibernated"
    assert {c["state"] for c in body["components"].values()} == {"Absent"}
    assert len(body["components"]) == 4
    conditions = {c["type"]: c for c in body["conditions"]}
    for ctype in ("Ready", "Progressing", "Degraded"):
        assert (
            conditions[ctype]["status"] == "False" and conditions[ctype]["reason"] == "Hibernated"
        )
    reasons = [e.reason for e in result.events]
    assert reasons[0] == "Hibernated" and "PhaseHibernated" in reasons
    assert "Backend -> Nginx -> Kong -> Redis" in result.events[0].message

    again = core.reconcile(core.StackObject(ref, 2, obj.spec, body, {}), deps)
    assert again.error is None and again.events == []
    assert status.patches[-1]["phase"] == "Hibernated"
