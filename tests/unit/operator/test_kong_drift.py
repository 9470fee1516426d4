"""Kong's configuration as level-based state (issue 11, item 5): the operator compares the hash
Kong reports now with the one Kong reported for the rendered config, re-applies on a mismatch
(a Warning), and the phase is not Ready while the canary says masking fails."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.unit.operator.operator_fakes import SECRETS

from kongmasker.api.vocabulary import Component, Phase
from kongmasker.core import status as st
from kongmasker.core.render import KONG_CONFIG_PATH
from kongmasker.core.stack import (
    KONG_HASH_SUFFIX,
    ActionKind,
    Executor,
    kong_live_hash,
    observe,
    plan,
    record_kong_hash,
)

pytestmark = pytest.mark.unit


def _converge(ref, spec, runtime, probes, settings, desired, live=None) -> Executor:  # type: ignore[no-untyped-def]
    ex = Executor(ref, spec, runtime, probes, SECRETS, settings)
    ex.apply(desired, plan(desired, observe(runtime, ref, desired, live)))
    return ex


def _kong_actions(ref, runtime, desired, live: str | None) -> list[Any]:  # type: ignore[no-untyped-def]
    actions = plan(desired, observe(runtime, ref, desired, lambda: live))
    return [a for a in actions if a.component is Component.KONG]


def test_hash_mismatch_is_drift_and_reapplies(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    # Started from the file: no hash recorded yet -> recorded as Kong reports it, no action
    # (a converged stack stays Ready).
    assert _kong_actions(ref, runtime, desired, "a" * 32) == []
    observed = observe(runtime, ref, desired, lambda: "a" * 32)
    assert record_kong_hash(runtime, observed, desired)
    kong_id = next(c.id for c in runtime.containers.values() if c.name.endswith("-kong"))
    assert runtime.read_file(kong_id, KONG_CONFIG_PATH + KONG_HASH_SUFFIX) == b"a" * 32
    assert not record_kong_hash(runtime, observe(runtime, ref, desired, lambda: "b" * 32), desired)
    assert _kong_actions(ref, runtime, desired, "a" * 32) == []
    # Someone POSTed another config: the file still matches, Kong's hash does not.
    (drift,) = _kong_actions(ref, runtime, desired, "b" * 32)
    assert drift.kind is ActionKind.APPLY_CONFIG and drift.drift
    assert "bbbbbbbbbbbb" in drift.reason and "aaaaaaaaaaaa" in drift.reason
    # Kong not answering is the health gate's business, not a drift.
    assert _kong_actions(ref, runtime, desired, None) == []


def test_apply_records_the_hash_kong_reports(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)

    real_get = probes.http_get

    def http_get(url: str):  # type: ignore[no-untyped-def]
        answer = real_get(url)
        if url.endswith(f":{spec.kong.admin_port}/status") and answer.ok:
            return replace(answer, body={"configuration_hash": "c" * 32})
        return answer

    probes.http_get = http_get
    assert kong_live_hash(spec, probes) == "c" * 32
    kong_id = next(c.id for c in runtime.containers.values() if c.name.endswith("-kong"))
    runtime.put_file(kong_id, KONG_CONFIG_PATH + KONG_HASH_SUFFIX, b"d" * 32)  # drifted
    ex = Executor(ref, spec, runtime, probes, SECRETS, settings)
    actions = plan(desired, observe(runtime, ref, desired, lambda: kong_live_hash(spec, probes)))
    ex.apply(desired, actions)
    assert [a.drift for a in actions] == [True]
    assert probes.posts and probes.posts[-1][0].endswith("/config")
    assert runtime.read_file(kong_id, KONG_CONFIG_PATH + KONG_HASH_SUFFIX) == b"c" * 32
    assert plan(desired, observe(runtime, ref, desired, lambda: kong_live_hash(spec, probes))) == []


def _conds(ready: str, masking: str | None) -> list[dict[str, str]]:
    out = [{"type": "Ready", "status": ready}]
    if masking is not None:
        out.append({"type": "MaskingVerified", "status": masking})
    return out


@pytest.mark.parametrize(
    ("phase", "ready", "masking", "expected"),
    [
        (Phase.READY, "True", "False", Phase.DEGRADED),
        (Phase.READY, "True", "True", Phase.READY),
        (Phase.READY, "True", None, Phase.READY),
        (Phase.READY, "True", "Unknown", Phase.READY),
        (Phase.DEGRADED, "True", "True", Phase.READY),
        (Phase.DEGRADED, "False", "True", Phase.DEGRADED),
        (Phase.PROGRESSING, "False", "False", Phase.PROGRESSING),
    ],
)
def test_not_ready_while_masking_fails(
    phase: Phase, ready: str, masking: str | None, expected: Phase
) -> None:
    assert st.masking_phase(str(phase), _conds(ready, masking)) == expected
