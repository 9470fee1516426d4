"""spec.alerts.webhook end to end: the operator (a subprocess scoped to the test namespace,
health watch on) against the real API server and dockerd. The stack names a Secret holding
the URL of a receiver this test runs on 127.0.0.1; a hung gateway (SIGSTOP) is restarted by
the watch and gives exactly one alert there, a second hang inside the cooldown none, the
operator-wide webhook (the fallback) nothing while the stack has its own; the URL is in no
Event, no status and not in the operator log. Pointing the spec at a missing Secret gives one
AlertWebhookUnavailable Warning, the stack stays Ready and alerts fall back to the
operator-wide webhook."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.e2e.stack_env import StackEnv, metric_samples, metric_value, start_operator
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e

TOKEN = "T0KEN-e2e-stack-webhook"
OPERATOR_TOKEN = "T0KEN-e2e-operator-webhook"


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def alerts(self, reason: str, component: str | None = None) -> list[dict[str, Any]]:
        return [
            a
            for a in list(self.received)
            if a["reason"] == reason and (component is None or a["component"] == component)
        ]


@contextlib.contextmanager
def _receiver(token: str) -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 whose URL carries a token, as chat webhooks do."""
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hooks/{token}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with _receiver(TOKEN) as stack_hook, _receiver(OPERATOR_TOKEN) as operator_hook:
        yield stack_hook, operator_hook


def _metric(url: str, metric: str, **labels: str) -> float | None:
    return metric_value(metric_samples(url), metric, **labels)


def test_stack_webhook_from_a_secret_dedups_redacts_and_falls_back(
    stack_env: StackEnv, receivers: tuple[Receiver, Receiver]
) -> None:
    env = stack_env
    hook, operator_hook = receivers
    assert env.operator is not None
    env.operator.stop()  # the fixture's operator has no watch; this one has
    metrics_port = free_port()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    env.operator = start_operator(
        env.namespace,
        env.tmp / "operator-alerts.log",
        KONGMASKER_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        KONGMASKER_MONITOR_ENABLED="true",
        KONGMASKER_MONITOR_WEBHOOK_URL=operator_hook.url,
        KONGMASKER_MONITOR_INTERVAL="2",
        KONGMASKER_MONITOR_CANARY_INTERVAL="0",
        KONGMASKER_MONITOR_RESOURCES_INTERVAL="0",
        KONGMASKER_MONITOR_STARTUP_GRACE="3",
        KONGMASKER_HEALTH_PROBE_TIMEOUT="1",
    )
    env.kubectl(
        "create", "secret", "generic", "alert-hook", "-n", env.namespace,
        f"--from-literal=url={hook.url}",
    )  # fmt: skip
    name = "alerted"
    webhook = {"secretRef": {"name": "alert-hook"}, "cooldownSeconds": 600}
    env.apply(name, env.spec(name, alerts={"webhook": webhook}))
    env.wait_ready(name)
    stack = {"namespace": env.namespace, "name": name}
    kong_labels = {**stack, "component": "kong"}

    def restarts() -> float:
        return _metric(url, "kongmasker_recovery_actions_total", **kong_labels) or 0

    def probes() -> float:
        return _metric(url, "kongmasker_health_checks_total", **kong_labels) or 0

    def kong_up() -> bool:
        return _metric(url, "kongmasker_component_up", **kong_labels) == 1

    def later_round(seen: float, rounds: int = 1) -> None:
        # Every round probes kong once and runs its alerts after the probes: a probe count
        # past `seen` means the round that was running when `seen` was read has finished.
        wait_until(lambda: probes() >= seen + rounds, timeout=60, what=f"{rounds} more rounds")

    wait_until(kong_up, timeout=60, what="the watch probing kong")
    kong = env.client.containers.get(env.container_name(name, "kong"))
    try:
        # First hang: restarted, one alert at the stack's webhook.
        kong.kill(signal="SIGSTOP")
        wait_until(lambda: restarts() >= 1, timeout=180, what="the watch restarting kong")
        fired = wait_until(
            lambda: hook.alerts("ProbesFailing", "kong"), timeout=30, what="the alert"
        )
        assert len(fired) == 1
        assert fired[0]["status"] == "firing" and fired[0]["severity"] == "warning"
        assert fired[0]["stack"] == stack
        assert fired[0]["key"] == f"{env.namespace}/{name}/ProbesFailing/kong"
        wait_until(kong_up, timeout=120, what="kong healthy again")

        # Second hang, same cause, inside the 600 s cooldown: restarted, Event posted, no alert.
        kong.kill(signal="SIGSTOP")
        wait_until(lambda: restarts() >= 2, timeout=180, what="the second restart")
        later_round(probes())
        events = [e for e in env.events(name) if e.get("reason") == "ProbesFailing"]
        assert sum(int(e.get("count") or 1) for e in events) >= 2, events
        assert len(hook.alerts("ProbesFailing", "kong")) == 1, hook.received
        keys = [a["key"] for a in hook.received]
        assert len(keys) == len(set(keys)), keys  # nothing sent twice
        assert operator_hook.received == []  # the stack's own webhook took precedence
        wait_until(kong_up, timeout=120, what="kong healthy after the second hang")
    finally:
        with contextlib.suppress(Exception):
            kong.kill(signal="SIGCONT")

    # A missing Secret: one Warning, the watch and the stack carry on, the fallback is used.
    webhook["secretRef"] = {"name": "no-such-secret"}
    env.apply(name, env.spec(name, alerts={"webhook": webhook}))

    def unavailable() -> list[dict[str, Any]]:
        return [e for e in env.events(name) if e.get("reason") == "AlertWebhookUnavailable"]

    found = wait_until(unavailable, timeout=60, what="the AlertWebhookUnavailable Event")
    assert found[0]["type"] == "Warning"
    assert f"webhook of Secret {env.namespace}/no-such-secret key url" in found[0]["message"]
    later_round(probes(), rounds=3)
    assert sum(int(e.get("count") or 1) for e in unavailable()) == 1  # once, not every round
    assert operator_hook.alerts("AlertWebhookUnavailable")
    env.wait_condition(name, "Ready", "True", timeout=60)

    # The URLs never left the Secret and the operator's environment.
    everything = json.dumps(
        {
            "stack": env.get(name),
            "events": env.events(name),
            "all-events": json.loads(
                env.kubectl("get", "events", "-n", env.namespace, "-o", "json").stdout
            ),
        }
    )
    log = env.operator.log.read_text(errors="replace")
    for secret in (TOKEN, hook.url, OPERATOR_TOKEN):
        assert secret not in everything
        assert secret not in log
