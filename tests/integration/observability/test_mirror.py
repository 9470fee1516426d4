"""Mirroring the components' own counters (kongmasker.core.mirror) from a real gateway and
backend into the operator's metrics, including counter resets when a component restarts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from tests.integration.observability.obs_support import Stack, hand_wired_stack

from kongmasker import metrics
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component
from kongmasker.core import canary
from kongmasker.core.mirror import mirror_stack

pytestmark = pytest.mark.integration

NS = "obs-mirror"


@pytest.fixture(scope="module")
def stack(docker_host: str, images: dict[str, str]) -> Iterator[Stack]:
    with hand_wired_stack(docker_host, images, NS, with_backend=True) as box:
        yield box
        metrics.forget_observability(NS, box.ref.name)


def _value(stack: Stack, name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, {"namespace": NS, "name": stack.ref.name, **labels})
    return found or 0.0


def _analyze(stack: Stack, key: str | None) -> int:
    headers = {"X-API-Key": key} if key is not None else {}
    resp = httpx.post(
        f"http://127.0.0.1:{stack.spec.backend.port}/analyze",
        json={"text": "why is i-0123456789abcdef0 slow?"},
        headers=headers,
        timeout=30,
    )
    return resp.status_code


def test_component_counters_are_mirrored_and_survive_restarts(stack: Stack) -> None:
    mirror = metrics.CumulativeMirror()
    first = mirror_stack(stack.spec, NS, stack.ref.name, mirror)
    assert not first.errors and set(first.read) == {"kong", "backend"}
    base_kong = _value(stack, "kongmasker_proxy_requests_total", component="kong")

    assert canary.run(stack.target, per_type_timing=False).ok
    assert _analyze(stack, None) == 401
    assert _analyze(stack, "wrong") == 401
    assert _analyze(stack, stack.secrets["BACKEND_API_KEY"]) == 200
    mirror_stack(stack.spec, NS, stack.ref.name, mirror)

    assert _value(stack, "kongmasker_auth_failures_total", component="backend") == 2
    # The canary and the backend's /analyze went through the gateway.
    assert _value(stack, "kongmasker_proxy_requests_total", component="kong") >= base_kong + 2
    assert _value(stack, "kongmasker_proxy_requests_total", component="backend") >= 3
    assert _value(stack, "kongmasker_masked_identifiers_total", type="EC2") >= 2
    assert _value(stack, "kongmasker_masked_bytes_total") > 0
    assert _value(stack, "kongmasker_proxy_request_errors_total", component="kong") == 0

    # A pass without traffic adds nothing (increments, not totals).
    before = _value(stack, "kongmasker_auth_failures_total", component="backend")
    mirror_stack(stack.spec, NS, stack.ref.name, mirror)
    assert _value(stack, "kongmasker_auth_failures_total", component="backend") == before

    # Fail-secure refusals at the gateway are security incidents.
    stack.runtime.stop_container(stack.ids["redis"], timeout=10)
    try:
        assert canary.run(stack.target, per_type_timing=False).status_code == 503
    finally:
        stack.runtime.start_container(stack.ids["redis"])
        stack.wait_healthy(Component.REDIS)
    mirror_stack(stack.spec, NS, stack.ref.name, mirror)
    reason = "FailSecureRefusal"
    assert _value(stack, "kongmasker_security_incidents_total", reason=reason) == 1
    assert _value(stack, "kongmasker_proxy_request_errors_total", component="kong") >= 1

    # The gateway restarts: its counters start from zero, ours keep growing.
    kong_before = _value(stack, "kongmasker_proxy_requests_total", component="kong")
    stack.runtime.stop_container(stack.ids["kong"], timeout=10)
    stack.runtime.start_container(stack.ids["kong"])
    stack.wait_healthy(Component.KONG)
    stack.wait_healthy(Component.NGINX)
    assert canary.run(stack.target, per_type_timing=False).ok
    mirror_stack(stack.spec, NS, stack.ref.name, mirror)
    assert _value(stack, "kongmasker_proxy_requests_total", component="kong") >= kong_before + 1


def test_unreachable_components_are_reported_not_raised(stack: Stack) -> None:
    # Ports 1 and 2 of 127.0.0.1: nothing listens there.
    broken = StackSpec.from_dict(
        {"upstream": {"url": stack.mock_url}, "kong": {"statusPort": 1}, "backend": {"port": 2}}
    )
    result = mirror_stack(broken, NS, "unreachable", metrics.CumulativeMirror())
    assert set(result.errors) == {"kong", "backend"}
    assert not result.read
