"""The masking canary's pure parts (kongmasker.core.canary): the probe against the real
engine, the checks and verdicts on texts the engine produces, and the metrics it records.
The end-to-end run on real containers is tests/integration/observability/test_canary_stack.py.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from kongmasker import metrics
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import ConditionType, Reason
from kongmasker.core import canary
from kongmasker_dataplane import masking

pytestmark = pytest.mark.unit


def _gateway(text: str) -> tuple[str, str]:
    """What a correct gateway + echoing mock produce: (upstream text, caller's reply)."""
    result = masking.mask(text)
    return result.text, masking.unmask(result.text, result.mapping)


def test_probe_covers_every_type_and_each_line_masks_as_its_type() -> None:
    probe = canary.build_probe()
    assert set(probe.lines) == set(masking.TYPES) == set(masking.EXAMPLES)
    findings = masking.find(probe.text)
    for type_, line in probe.lines.items():
        start = probe.text.index(line)
        inside = [f for f in findings if start <= f.start < start + len(line)]
        assert [f.type for f in inside] == [type_], line
        assert probe.raw[type_] and all(v in line for v in probe.raw[type_])
    assert not [f for f in findings if probe.nonce in f.value]


def test_nonces_and_tags_are_unique_and_letters_only() -> None:
    a, b = canary.build_probe(), canary.build_probe()
    assert a.nonce != b.nonce and a.nonce.isalpha()
    keys = [line.split(":", 1)[0] for line in a.lines.values()]
    assert len(set(keys)) == len(keys) and all(k.isalpha() for k in keys)


def test_a_correct_gateway_passes() -> None:
    probe = canary.build_probe()
    upstream, reply = _gateway(probe.text)
    result = canary._conclude(canary._check(probe, upstream, reply, {"EC2": 0.001}), 200, 0.02)
    assert result.ok is True and result.reason is Reason.CANARY_PASSED
    assert result.accuracy == 1.0
    assert result.types["EC2"].masking_seconds == 0.001
    assert f"all {len(masking.TYPES)} identifier types" in result.message


def test_raw_identifiers_upstream_are_a_leak() -> None:
    probe = canary.build_probe()
    upstream, reply = _gateway(probe.text)
    leaky = upstream.replace(masking.mask(masking.EXAMPLES["VPC"]).text, "vpc-0123456789abcdef0")
    result = canary._conclude(canary._check(probe, leaky, reply, {}), 200, 0.02)
    assert result.ok is False
    assert result.reason is Reason.IDENTIFIER_LEAKED
    assert result.failed_types(Reason.IDENTIFIER_LEAKED) == ["VPC"]
    assert "1/" in result.message and "VPC" in result.message


def test_unmasked_pass_through_leaks_every_type() -> None:
    probe = canary.build_probe()
    result = canary._conclude(canary._check(probe, probe.text, probe.text, {}), 200, 0.02)
    assert result.reason is Reason.IDENTIFIER_LEAKED
    assert len(result.failed_types(Reason.IDENTIFIER_LEAKED)) == len(masking.TYPES)
    assert result.accuracy == 0.0


def test_wrong_type_and_not_restored_are_told_apart() -> None:
    probe = canary.build_probe()
    upstream, reply = _gateway(probe.text)
    swapped = upstream.replace("AWS_EC2_", "AWS_AMI_")
    result = canary._conclude(canary._check(probe, swapped, reply, {}), 200, 0.02)
    assert (result.reason, result.failed_types(Reason.WRONG_TYPE)) == (Reason.WRONG_TYPE, ["EC2"])
    result = canary._conclude(canary._check(probe, upstream, upstream, {}), 200, 0.02)
    assert result.reason is Reason.ORIGINALS_NOT_RESTORED


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
    upstream, reply = _gateway(probe.text)
    leaky = upstream.replace(masking.mask(masking.EXAMPLES["VPC"]).text, "vpc-0123456789abcdef0")
    result = canary._conclude(canary._check(probe, leaky, reply, {"EC2": 0.002}), 200, 0.03)
    canary.record(result, "ns-canary", "s")

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": "ns-canary", "name": "s", **labels})

    assert value("kongmasker_masking_verified") == 0
    assert value("kongmasker_canary_requests_total") == 1
    assert value("kongmasker_canary_request_duration_seconds_count") == 1
    assert value("kongmasker_security_incidents_total", reason="UnmaskedIdentifierSeen") == 1
    assert value("kongmasker_masking_accuracy_ratio", type="VPC") == 0
    assert value("kongmasker_masking_accuracy_ratio", type="EC2") == 1
    assert value("kongmasker_masking_processing_seconds", type="EC2") == 0.002
    assert (
        value(
            "kongmasker_masking_check_failures_total", type="VPC", reason="UnmaskedIdentifierSeen"
        )
        == 1
    )
    n = len(masking.TYPES)
    assert value("kongmasker_masking_success_ratio") == pytest.approx((n - 1) / n)
    metrics.forget_observability("ns-canary", "s")
