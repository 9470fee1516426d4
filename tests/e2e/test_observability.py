"""Issue 5 end to end: the operator (a subprocess) watches a real stack on the real API
server and dockerd: MaskingVerified from the canary, every metric family on its /metrics with
plausible values, a hung gateway (SIGSTOP) restarted by the watch, and a second hang past the
restart budget leaving the stack Degraded with reason RestartBudgetExhausted."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.e2e.stack_env import (
    COMPONENTS,
    StackEnv,
    metric_samples,
    metric_value,
    start_operator,
)
from tests.support import free_port, wait_until

from kongmasker import metrics

pytestmark = pytest.mark.e2e


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1 (its URL carries a token, as chat webhooks do)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/hooks/{TOKEN}", received
    server.shutdown()
    server.server_close()


TOKEN = "T0KEN-e2e-webhook-secret"


def test_watch_verifies_masking_exposes_metrics_heals_a_hang_and_escalates(
    stack_env: StackEnv, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    env = stack_env
    hook_url, alerts = webhook
    assert env.operator is not None
    env.operator.stop()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env.operator = start_operator(
        env.namespace,
        env.tmp / "operator-watch.log",
        KONGMASKER_METRICS_ADDR=f"127.0.0.1:{port}",
        KONGMASKER_MONITOR_ENABLED="true",
        KONGMASKER_MONITOR_WEBHOOK_URL=hook_url,
        KONGMASKER_MONITOR_INTERVAL="2",
        KONGMASKER_MONITOR_CANARY_INTERVAL="5",
        KONGMASKER_MONITOR_CANARY_PER_TYPE_TIMING="true",
        KONGMASKER_MONITOR_STARTUP_GRACE="3",
        KONGMASKER_MONITOR_RESTART_BUDGET="1",
        KONGMASKER_MONITOR_RESOURCES_INTERVAL="2",
        KONGMASKER_HEALTH_PROBE_TIMEOUT="1",
    )
    name = "watched"
    env.apply(name, env.spec(name))
    env.wait_ready(name)
    env.wait_condition(name, "MaskingVerified", "True", "CanaryPassed", timeout=90)
    stack = {"namespace": env.namespace, "name": name}

    def plausible() -> dict[Any, float] | None:
        s = metric_samples(url)
        checks = [
            all(
                metric_value(s, "kongmasker_component_up", **stack, component=c) == 1
                for c in COMPONENTS
            ),
            metric_value(s, "kongmasker_masking_verified", **stack) == 1,
            metric_value(s, "kongmasker_masking_success_ratio", **stack) == 1,
            metric_value(s, "kongmasker_masking_accuracy_ratio", **stack, type="iam-role") == 1,
            (metric_value(s, "kongmasker_masking_processing_seconds", **stack, type="ec2") or -1)
            >= 0,
            (metric_value(s, "kongmasker_canary_request_duration_seconds_count", **stack) or 0)
            >= 1,
            (metric_value(s, "kongmasker_health_checks_total", **stack, component="kong") or 0)
            >= 1,
            (metric_value(s, "kongmasker_stack_uptime_ratio", **stack) or 0) > 0,
            (metric_value(s, "kongmasker_proxy_requests_total", **stack, component="kong") or 0)
            >= 1,
            (metric_value(s, "kongmasker_masked_identifiers_total", **stack, type="EC2") or 0) >= 1,
            (metric_value(s, "kongmasker_masked_bytes_total", **stack) or 0) > 0,
            all(
                (
                    metric_value(s, "kongmasker_container_memory_usage_bytes", **stack, component=c)
                    or 0
                )
                > 0
                for c in COMPONENTS
            ),
            (metric_value(s, "kongmasker_docker_host_free_disk_bytes", **stack) or 0) > 0,
        ]
        return s if all(checks) else None

    samples = wait_until(plausible, timeout=90, what="plausible issue-5 metrics")
    exposed = {sample for sample, _ in samples}
    for family in metrics.OBSERVABILITY_FAMILIES:
        kind = family._type  # type: ignore[attr-defined]
        base = str(family._name)  # type: ignore[attr-defined]
        expected = {
            "counter": base + "_total",
            "histogram": base + "_count",
            "gauge": base,
        }[kind]
        if family is metrics.RECOVERY_ACTIONS or family is metrics.SECURITY_INCIDENTS:
            continue  # no recovery yet, no incident: these appear with their first event
        if "block" in base or "network" in base or "auth_failures" in base:
            continue  # host networking; no block I/O from this engine; no failed logins yet
        if base.endswith("_failures") or base.endswith("_errors"):
            continue  # nothing has failed yet
        assert expected in exposed, expected

    kong = env.client.containers.get(env.container_name(name, "kong"))
    try:
        kong.kill(signal="SIGSTOP")
        wait_until(
            lambda: (metric_value(metric_samples(url), "kongmasker_recovery_actions_total", **stack,
                            component="kong") or 0) >= 1,
            timeout=240,
            what="the watch restarting the hung gateway",
        )  # fmt: skip
        assert any("kong" in e.get("message", "") for e in env.events_with(name, "ProbesFailing"))
        fired = wait_until(
            lambda: [a for a in alerts if a["reason"] == "ProbesFailing"],
            timeout=30,
            what="the ProbesFailing alert at the webhook",
        )
        assert fired[0]["component"] == "kong" and fired[0]["status"] == "firing"
        assert fired[0]["stack"] == {"namespace": env.namespace, "name": name}
        wait_until(
            lambda: (
                metric_value(
                    metric_samples(url), "kongmasker_component_up", **stack, component="kong"
                )
                == 1
            ),
            timeout=120,
            what="kong healthy again",
        )
        env.wait_ready(name)

        kong.kill(signal="SIGSTOP")  # budget 1 is spent: no second restart
        env.wait_condition(name, "Degraded", "True", "RestartBudgetExhausted", timeout=240)
        assert env.events_with(name, "RestartBudgetExhausted")
        restarts = metric_value(
            metric_samples(url), "kongmasker_recovery_actions_total", **stack, component="kong"
        )
        assert restarts == 1
        exhausted = metric_value(
            metric_samples(url), "kongmasker_restart_budget_exhausted", **stack, component="kong"
        )
        assert exhausted == 1
        kong.reload()
        assert kong.attrs["State"]["Status"] == "running"  # hung, and left alone
        budget = wait_until(
            lambda: [a for a in alerts if a["reason"] == "RestartBudgetExhausted"],
            timeout=30,
            what="the RestartBudgetExhausted alert at the webhook",
        )
        assert len(budget) == 1 and budget[0]["severity"] == "critical"
        assert TOKEN not in env.operator.log.read_text(errors="replace")
    finally:
        with contextlib.suppress(Exception):
            kong.kill(signal="SIGCONT")
