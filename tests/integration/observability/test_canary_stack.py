"""The masking canary on real containers: Redis, the gateway, Nginx and the mock upstream
images on the real dockerd, wired by hand in the test from the operator's own renderers
(no reconcile loop; see obs_support.py), on free 127.0.0.1 ports. Nothing is mocked; the mock
upstream image is the operator-controlled stand-in for the AI API.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY
from tests.integration.observability.obs_support import Stack, hand_wired_stack
from tests.support import wait_until

from kongmasker import metrics
from kongmasker.api import vectors
from kongmasker.api.vocabulary import Component, Reason
from kongmasker.core import canary

CANARY_TYPES = {c.type for c in vectors.canary_cases()}

pytestmark = pytest.mark.integration

NS = "obs-it"


@pytest.fixture(scope="module")
def stack(docker_host: str, images: dict[str, str]) -> Iterator[Stack]:
    with hand_wired_stack(docker_host, images, NS) as box:
        yield box
        metrics.forget_observability(NS, box.ref.name)


def _sample(name: str, stack: Stack, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "name": stack.ref.name, **labels})


def test_canary_passes_through_the_real_stack(stack: Stack) -> None:
    probe = canary.build_probe()
    result = canary.run(stack.target, probe=probe)
    assert result.ok is True, result.message
    assert result.reason is Reason.CANARY_PASSED
    assert result.accuracy == 1.0
    assert set(result.types) == CANARY_TYPES
    assert result.latency_seconds is not None and result.latency_seconds > 0
    # Masking time per type from the gateway's own histogram (no other traffic here).
    timed = {t for t, r in result.types.items() if r.masking_seconds is not None}
    assert timed == CANARY_TYPES
    assert all(r.masking_seconds >= 0 for r in result.types.values())  # type: ignore[operator]

    # What the upstream received: the canary's body, with not one raw identifier in it.
    bodies = [b for b in stack.history() if probe.nonce in str(b)]
    full = next(b for b in bodies if all(k in str(b) for k in ("AWS_EC2_", "AWS_IAM_ROLE_")))
    for values in probe.raw.values():
        assert not any(v in str(full) for v in values)

    canary.record(result, NS, stack.ref.name)
    assert _sample("kongmasker_masking_verified", stack) == 1
    assert _sample("kongmasker_masking_success_ratio", stack) == 1.0
    assert _sample("kongmasker_masking_accuracy_ratio", stack, type="s3-bucket") == 1
    assert _sample("kongmasker_canary_request_duration_seconds_count", stack) == 1
    assert _sample("kongmasker_masking_processing_seconds", stack, type="ec2") is not None


def test_canary_catches_a_gateway_that_stopped_masking(stack: Stack) -> None:
    desired_config = yaml.safe_load(stack.desired[Component.KONG].config or b"")
    bare = {k: v for k, v in desired_config.items()}
    bare["services"] = [
        {k: v for k, v in svc.items() if k != "plugins"} for svc in desired_config["services"]
    ]
    assert httpx.post(f"{stack.admin}/config", json=bare, timeout=10).status_code == 201
    try:
        result = canary.run(stack.target, per_type_timing=False)
        assert result.ok is False
        assert result.reason is Reason.IDENTIFIER_LEAKED
        assert set(result.failed_types(Reason.IDENTIFIER_LEAKED)) == CANARY_TYPES
        canary.record(result, NS, stack.ref.name)
        incidents = _sample(
            "kongmasker_security_incidents_total", stack, reason="UnmaskedIdentifierSeen"
        )
        assert incidents == 1
    finally:
        resp = httpx.post(f"{stack.admin}/config", json=desired_config, timeout=10)
        assert resp.status_code == 201
    assert canary.run(stack.target, per_type_timing=False).ok is True


def test_canary_reports_fail_secure_when_redis_stops(stack: Stack) -> None:
    stack.runtime.stop_container(stack.ids["redis"], timeout=10)
    try:
        probe = canary.build_probe()
        result = canary.run(stack.target, probe=probe, per_type_timing=False)
        assert result.ok is False
        assert result.reason is Reason.FAIL_SECURE_REFUSAL, result.message
        assert result.status_code == 503
        # Refused, not passed through: the upstream never saw this run's request.
        assert not [b for b in stack.history() if probe.nonce in str(b)]
    finally:
        stack.runtime.start_container(stack.ids["redis"])
        stack.wait_healthy(Component.REDIS)
    wait_until(
        lambda: canary.run(stack.target, per_type_timing=False).ok,
        timeout=60,
        what="the canary passing again after Redis came back",
    )


def test_canary_sends_nothing_to_an_upstream_that_is_not_the_mock(stack: Stack) -> None:
    before = len(stack.history())
    # The gateway's admin API stands in for a real AI API: it has no GET /__requests.
    target = canary.CanaryTarget(
        stack.target.proxy_url, "/v1", stack.admin, stack.target.gateway_metrics_url
    )
    result = canary.run(target)
    assert result.ok is None and result.reason is Reason.UPSTREAM_NOT_VERIFIABLE
    assert not result.sent
    assert len(stack.history()) == before
