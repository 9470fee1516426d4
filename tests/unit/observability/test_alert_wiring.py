"""The watch's alert helper (handlers/monitor._alert): one notifier per stack keyed by uid in
the memo, the operator-wide notifier as the fallback, one AlertWebhookUnavailable Event per
problem, a changed Secret giving a new notifier, the entry dropped with the daemon, and a
failing notifier never stopping the watch nor logging the URL."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from kongmasker.adapters.notifier import Alert, Delivery, Outcome
from kongmasker.api.spec import StackSpec
from kongmasker.config import MonitorSettings
from kongmasker.core.status import EventNote
from kongmasker.errors import NotFound
from kongmasker.handlers import monitor as handler

pytestmark = pytest.mark.unit

TOKEN = "T0KEN-wiring-secret"
URL = f"http://127.0.0.1:9/hooks/{TOKEN}"
PROBES = EventNote("ProbesFailing", "kong: 3 consecutive probes failed; restarted", warning=True)


@dataclass
class FakeNotifier:
    url: str
    cooldown: float = 900.0
    sent: list[Alert] = field(default_factory=list)
    closed: bool = False
    fail: bool = False

    def notify(self, alert: Alert) -> Outcome:
        if self.fail:
            raise RuntimeError(f"cannot post to {self.url}")
        self.sent.append(alert)
        return Outcome(Delivery.SENT, 200)

    def close(self) -> None:
        self.closed = True


class Secrets:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, bytes]] = {}

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        if name not in self.data:
            raise NotFound(f"Secret {namespace}/{name} not found")
        return self.data[name]


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[EventNote]:
    out: list[EventNote] = []
    monkeypatch.setattr(handler, "_post", lambda body, events: out.extend(events))
    monkeypatch.setattr(handler, "WebhookNotifier", FakeNotifier)
    return out


def _body(name: str = "demo") -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(namespace="team-a", name=name))


def _memo() -> dict[str, Any]:
    return {"locks_guard": threading.Lock(), "locks": {}}


def _deps(secrets: Secrets, operator_url: str = "") -> Any:
    return SimpleNamespace(
        secrets=secrets,
        settings=SimpleNamespace(monitor=MonitorSettings(webhook_url=operator_url)),
    )


def _spec(key: str = "url", **webhook: Any) -> StackSpec:
    ref = {"name": "hook", "key": key}
    return StackSpec.from_dict({"alerts": {"webhook": {"secretRef": ref, **webhook}}})


def test_the_stack_webhook_gets_its_own_notifier_per_uid(posted: list[EventNote]) -> None:
    secrets, memo = Secrets(), _memo()
    secrets.data["hook"] = {"url": URL.encode()}
    fallback = FakeNotifier("http://operator.example/x")
    deps = _deps(secrets, fallback.url)
    spec = _spec(cooldownSeconds=30)

    handler._alert(_body(), "uid-1", memo, deps, spec, [PROBES], fallback)
    handler._alert(_body("other"), "uid-2", memo, deps, spec, [PROBES], fallback)
    one, two = memo["alerting"]["uid-1"].notifier, memo["alerting"]["uid-2"].notifier
    assert one is not two and one.url == URL and one.cooldown == 30
    assert [a.key for a in one.sent] == ["team-a/demo/ProbesFailing/kong"]
    assert [a.key for a in two.sent] == ["team-a/other/ProbesFailing/kong"]
    assert fallback.sent == [] and posted == []

    handler._alert(_body(), "uid-1", memo, deps, spec, [], fallback)
    assert memo["alerting"]["uid-1"].notifier is one  # the same notifier keeps its de-dup state

    secrets.data["hook"] = {"url": b"http://127.0.0.1:9/hooks/rotated"}
    handler._alert(_body(), "uid-1", memo, deps, spec, [PROBES], fallback)
    rotated = memo["alerting"]["uid-1"].notifier
    assert rotated is not one and one.closed and rotated.url.endswith("/rotated")

    handler._forget_alerts(memo, "uid-1")
    assert "uid-1" not in memo["alerting"] and rotated.closed
    assert "uid-2" in memo["alerting"]


def test_without_the_field_the_operator_wide_notifier_is_used(posted: list[EventNote]) -> None:
    memo, fallback = _memo(), FakeNotifier("http://operator.example/x")
    deps = _deps(Secrets(), fallback.url)
    no_field = StackSpec.from_dict({})
    handler._alert(_body(), "uid-1", memo, deps, no_field, [PROBES], fallback)
    assert [a.reason for a in fallback.sent] == ["ProbesFailing"]
    assert memo["alerting"]["uid-1"].notifier is None and posted == []


def test_a_missing_secret_gives_one_event_and_falls_back(posted: list[EventNote]) -> None:
    secrets, memo = Secrets(), _memo()
    fallback = FakeNotifier("http://operator.example/x")
    deps = _deps(secrets, fallback.url)
    for _ in range(3):
        handler._alert(_body(), "uid-1", memo, deps, _spec(key="u"), [], fallback)
        handler._alert(_body(), "uid-1", memo, deps, _spec(key="u"), [PROBES], fallback)
    assert [e.reason for e in posted] == ["AlertWebhookUnavailable"]
    assert "webhook of Secret team-a/hook key u" in posted[0].message
    assert [a.reason for a in fallback.sent] == ["AlertWebhookUnavailable"] + ["ProbesFailing"] * 3

    secrets.data["hook"] = {"u": URL.encode()}  # fixed: the stack's own webhook from now on
    handler._alert(_body(), "uid-1", memo, deps, _spec(key="u"), [PROBES], fallback)
    assert memo["alerting"]["uid-1"].notifier.url == URL
    assert len(posted) == 1


def test_min_severity_applies_to_the_stack_webhook(posted: list[EventNote]) -> None:
    secrets, memo = Secrets(), _memo()
    secrets.data["hook"] = {"url": URL.encode()}
    budget = EventNote("RestartBudgetExhausted", "redis: budget spent", warning=True)
    spec = _spec(minSeverity="critical")
    handler._alert(_body(), "u", memo, _deps(secrets), spec, [PROBES, budget], None)
    sent = memo["alerting"]["u"].notifier.sent
    assert [(a.reason, a.severity) for a in sent] == [("RestartBudgetExhausted", "critical")]


def test_a_failing_notifier_neither_stops_the_watch_nor_logs_the_url(
    posted: list[EventNote], caplog: pytest.LogCaptureFixture
) -> None:
    secrets, memo = Secrets(), _memo()
    secrets.data["hook"] = {"url": URL.encode()}
    deps = _deps(secrets)
    handler._alert(_body(), "u", memo, deps, _spec(), [], None)
    memo["alerting"]["u"].notifier.fail = True
    with caplog.at_level(logging.DEBUG):
        handler._alert(_body(), "u", memo, deps, _spec(), [PROBES], None)
    assert "not delivered to webhook of Secret team-a/hook key url: RuntimeError" in caplog.text
    assert TOKEN not in caplog.text
