"""The masking canary's pure parts (kongmasker.core.canary): the probe built from the shared
test vectors, the checks and verdicts, and the metrics it records. The checks judge behaviour
only (no raw identifier upstream, every original back), so the "gateway" here is a generic
substitution, not the local gateway's engine: the canary must judge any plugin.
The end-to-end run on real containers is tests/integration/observability/test_canary_stack.py.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from kongmasker import metrics
from kongmasker.api import vectors
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import ConditionType, Reason
from kongmasker.core import canary

pytestmark = pytest.mark.unit

TYPES = {c.type for c in vectors.canary_cases()}


def _gateway(probe: canary.Probe, leak: str | None = None) -> tuple[str, str]:
    """What a correct plugin + echoing mock produce: (upstream text, caller's reply); with
    `leak`, that type's identifiers pass through raw."""
    upstream = probe.text
    values = sorted({v for t, vs in probe.raw.items() if t != leak for v in vs}, key=len)
    for n, value in enumerate(reversed(values)):
        upstream = upstream.replace(value, f"PLACEHOLDER_{n:03d}")
    return upstream, probe.text


def _standalone_types() -> list[str]:
    """Types whose identifiers neither contain nor sit inside another case's (an ARN holds an
    account id): leaking one of them leaks exactly that type."""
    cases = vectors.canary_cases()
    out = []
    for case in cases:
        others = [v for c in cases if c.type != case.type for v in c.identifiers]
        if not any(a in b or b in a for a in case.identifiers for b in others):
            out.append(case.type)
    return sorted(out)


def test_probe_has_one_line_per_canary_type_with_its_identifiers() -> None:
    probe = canary.build_probe()
    assert set(probe.lines) == TYPES and len(TYPES) == len(vectors.canary_cases())
    for case in vectors.canary_cases():
        line = probe.lines[case.type]
        assert line.endswith(case.text) and probe.raw[case.type] == case.identifiers
        assert all(v in line for v in case.identifiers)
    assert not any(probe.nonce in v for vs in probe.raw.values() for v in vs)


def test_nonces_and_tags_are_unique_and_letters_only() -> None:
    a, b = canary.build_probe(), canary.build_probe()
    assert a.nonce != b.nonce and a.nonce.isalpha()
    keys = [line.split(":", 1)[0] for line in a.lines.values()]
    assert len(set(keys)) == len(keys) and all(k.isalpha() for k in keys)


def test_a_correct_gateway_passes() -> None:
    probe = canary.build_probe()
    upstream, reply = _gateway(probe)
    some = sorted(TYPES)[0]
    result = canary._conclude(canary._check(probe, upstream, reply, {some: 0.001}), 200, 0.02)
    assert result.ok is True and result.reason is Reason.CANARY_PASSED
    assert result.accuracy == 1.0
    assert result.types[some].masking_seconds == 0.001
    assert f"all {len(TYPES)} identifier types" in result.message


@pytest.mark.parametrize("leaked", _standalone_types()[:4])
def test_one_leaking_type_is_named(leaked: str) -> None:
    probe = canary.build_probe()
    upstream, reply = _gateway(probe, leak=leaked)
    result = canary._conclude(canary._check(probe, upstream, reply, {}), 200, 0.02)
    assert result.ok is False
    assert result.reason is Reason.IDENTIFIER_LEAKED
    assert result.failed_types(Reason.IDENTIFIER_LEAKED) == [leaked]
    assert "1/" in result.message and leaked in result.message


def test_unmasked_pass_through_leaks_every_type() -> None:
    probe = canary.build_probe()
    result = canary._conclude(canary._check(probe, probe.text, probe.text, {}), 200, 0.02)
    assert result.reason is Reason.IDENTIFIER_LEAKED
    assert len(result.failed_types(Reason.IDENTIFIER_LEAKED)) == len(TYPES)
    assert result.accuracy == 0.0


def test_originals_not_restored() -> None:
    probe = canary.build_probe()
    upstream, _reply = _gateway(probe)
    result = canary._conclude(canary._check(probe, upstream, upstream, {}), 200, 0.02)
    assert result.reason is Reason.ORIGINALS_NOT_RESTORED
    assert set(result.failed_types(Reason.ORIGINALS_NOT_RESTORED)) == TYPES


def test_verdict_is_the_masking_verified_condition() -> None:
    ok = canary.CanaryResult(Reason.CANARY_PASSED, "fine", True, 200, 0.1)
    v = canary.verdict(ok)
    assert (v.type, v.ok, v.reason) == (ConditionType.MASKING_VERIFIED, True, "CanaryPassed")
    unknown = canary.verdict(canary.CanaryResult(Reason.UPSTREAM_NOT_VERIFIABLE, "no mock"))
    assert unknown.ok is None


def test_target_from_spec_uses_the_stacks_nginx_and_status_port() -> None:
    spec = StackSpec.from_dict(
        {
            "upstream": {"url": "http://127.0.0.1:18090"},
            "nginx": {"port": 18085},
            "kong": {"statusPort": 18100, "routePaths": ["/v1"]},
        }
    )
    target = canary.CanaryTarget.from_spec(spec)
    assert target.messages_url == "http://127.0.0.1:18085/v1/messages"
    assert target.gateway_metrics_url == "http://127.0.0.1:18100/metrics"
    assert target.upstream_url == "http://127.0.0.1:18090"


def test_never_sends_to_an_upstream_that_is_not_the_mock() -> None:
    """Stand-in for a paid API (unreachable here): an upstream without /__requests."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(404, json={"type": "error"})

    target = canary.CanaryTarget("http://nginx.test", "/v1", "https://api.example.test")
    result = canary.run(target, transport=httpx.MockTransport(handler))
    assert result.reason is Reason.UPSTREAM_NOT_VERIFIABLE and result.ok is None
    assert seen == ["GET /__requests"]


def test_record_publishes_the_result() -> None:
    probe = canary.build_probe()
    leaked = _standalone_types()[0]
    timed = next(t for t in sorted(TYPES) if t != leaked)
    upstream, reply = _gateway(probe, leak=leaked)
    result = canary._conclude(canary._check(probe, upstream, reply, {timed: 0.002}), 200, 0.03)
    canary.record(result, "ns-canary", "s")

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": "ns-canary", "name": "s", **labels})

    assert value("kongmasker_masking_verified") == 0
    assert value("kongmasker_canary_requests_total") == 1
    assert value("kongmasker_canary_request_duration_seconds_count") == 1
    assert value("kongmasker_security_incidents_total", reason="UnmaskedIdentifierSeen") == 1
    assert value("kongmasker_masking_accuracy_ratio", type=leaked) == 0
    assert value("kongmasker_masking_accuracy_ratio", type=timed) == 1
    assert value("kongmasker_masking_processing_seconds", type=timed) == 0.002
    assert (
        value(
            "kongmasker_masking_check_failures_total", type=leaked, reason="UnmaskedIdentifierSeen"
        )
        == 1
    )
    n = len(TYPES)
    assert value("kongmasker_masking_success_ratio") == pytest.approx((n - 1) / n)
    metrics.forget_observability("ns-canary", "s")
