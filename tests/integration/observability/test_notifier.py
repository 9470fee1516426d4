"""The webhook notifier against a real HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.support import free_port

from kongmasker.adapters.notifier import Alert, Delivery, WebhookNotifier
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.integration


@dataclass
class Hook:
    """A webhook receiver: records JSON bodies; `status` is what it answers."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def hook() -> Iterator[Hook]:
    port = free_port()
    state = Hook(url=f"http://127.0.0.1:{port}/hooks/T0KEN-secret")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append(json.loads(self.rfile.read(length)))
            state.headers.append(dict(self.headers.items()))
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Clock:
    """A settable monotonic clock, so the 15-minute cooldown needs no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def alert(resolved: bool = False, key: str = "default/demo/RestartBudgetExhausted/redis") -> Alert:
    return Alert(
        key=key,
        severity="critical",
        reason="RestartBudgetExhausted",
        message="5 restarts within 600s",
        namespace="default",
        name="demo",
        component="redis",
        resolved=resolved,
    )


def test_payload_is_json_with_the_alert(hook: Hook) -> None:
    notifier = WebhookNotifier(hook.url)
    assert notifier.notify(alert()).delivery is Delivery.SENT
    [body] = hook.received
    assert body["status"] == "firing"
    assert body["key"] == "default/demo/RestartBudgetExhausted/redis"
    assert body["stack"] == {"namespace": "default", "name": "demo"}
    assert body["severity"] == "critical" and body["component"] == "redis"
    assert body["text"].startswith("[CRITICAL firing] default/demo redis: RestartBudgetExhausted")
    assert body["timestamp"].endswith("Z")
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert "T0KEN" not in json.dumps(body)


def test_duplicates_are_suppressed_during_the_cooldown_and_counted(hook: Hook) -> None:
    clock = Clock()
    notifier = WebhookNotifier(hook.url, clock=clock)
    assert notifier.cooldown == 900  # the original's 15 minutes
    assert notifier.notify(alert()).delivery is Delivery.SENT
    clock.now += 60
    assert notifier.notify(alert()).delivery is Delivery.SUPPRESSED
    assert notifier.notify(alert()).delivery is Delivery.SUPPRESSED
    # Another key is independent.
    other = alert(key="default/demo/ComponentDown/kong")
    assert notifier.notify(other).delivery is Delivery.SENT
    clock.now += 900
    assert notifier.notify(alert()).delivery is Delivery.SENT
    assert [b["key"] for b in hook.received] == [
        "default/demo/RestartBudgetExhausted/redis",
        "default/demo/ComponentDown/kong",
        "default/demo/RestartBudgetExhausted/redis",
    ]
    assert hook.received[-1]["suppressedSinceLast"] == 2


def test_resolved_is_sent_once_and_only_after_a_firing(hook: Hook) -> None:
    clock = Clock()
    notifier = WebhookNotifier(hook.url, clock=clock)
    assert notifier.notify(alert(resolved=True)).delivery is Delivery.SUPPRESSED
    notifier.notify(alert())
    clock.now += 10
    assert notifier.notify(alert(resolved=True)).delivery is Delivery.SENT
    assert notifier.notify(alert(resolved=True)).delivery is Delivery.SUPPRESSED
    # Firing again after a resolution is news, cooldown or not.
    clock.now += 10
    assert notifier.notify(alert()).delivery is Delivery.SENT
    assert [b["status"] for b in hook.received] == ["firing", "resolved", "firing"]


def test_failed_delivery_is_retried_and_never_leaks_the_url(hook: Hook) -> None:
    clock = Clock()
    notifier = WebhookNotifier(hook.url, clock=clock)
    hook.status = 500
    outcome = notifier.notify(alert())
    assert (outcome.delivery, outcome.status_code) == (Delivery.FAILED, 500)
    assert "T0KEN" not in outcome.error
    hook.status = 200
    clock.now += 1
    assert notifier.notify(alert()).delivery is Delivery.SENT  # not in cooldown: it failed


def test_unreachable_webhook_is_a_failed_outcome_not_an_exception() -> None:
    notifier = WebhookNotifier(f"http://127.0.0.1:{free_port()}/T0KEN", timeout=2)
    outcome = notifier.notify(alert())
    assert outcome.delivery is Delivery.FAILED
    assert "unreachable" in outcome.error and "T0KEN" not in outcome.error


@pytest.mark.parametrize("url", ["", "ftp://example.org/x", "hooks.slack.com/T0KEN", "http://"])
def test_invalid_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        WebhookNotifier(url)
    assert "T0KEN" not in str(info.value)
