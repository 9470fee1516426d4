"""The watch memory (kongmasker.core.watch): probe rounds through the operator's own health
gates against scripted probe answers, recovery plans, and the availability metrics."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from kongmasker import metrics
from kongmasker.adapters.probes import HttpAnswer, ProbeFailed
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component, Reason
from kongmasker.core.recovery import Action, Policy
from kongmasker.core.watch import StackWatch, probe_round

pytestmark = pytest.mark.unit

NS = "ns-watch"
SPEC = StackSpec.from_dict({"upstream": {"url": "http://127.0.0.1:18090"}})
PORTS = {
    SPEC.redis.port: Component.REDIS,
    SPEC.kong.status_port: Component.KONG,
    SPEC.kong.admin_port: Component.KONG,
    SPEC.nginx.port: Component.NGINX,
    SPEC.backend.port: Component.BACKEND,
}


class ScriptedProbes:
    """Answers like the real endpoints would, for the components in `up`. Stands in for the
    network: the real probes are exercised by the operator's and the canary's integration tests."""

    def __init__(self) -> None:
        self.up = set(Component)

    def _component(self, url: str) -> Component:
        return PORTS[int(url.split(":")[2].split("/")[0])]

    def http_get(self, url: str) -> HttpAnswer:
        comp = self._component(url)
        if comp not in self.up:
            return HttpAnswer(0, error="ConnectError: refused")
        # Readiness goes through the dependencies, as the real Nginx and backend do it.
        needs = {Component.NGINX: {Component.KONG}, Component.BACKEND: set(Component)}
        if url.endswith("/health/ready") and not needs.get(comp, set()) <= self.up:
            return HttpAnswer(503, {"status": "not ready"})
        if url.endswith("/plugins/enabled"):
            return HttpAnswer(200, {"enabled_plugins": ["aws-masker"]})
        return HttpAnswer(200, {"status": "ok"})

    def http_post(self, url: str, payload: Any) -> HttpAnswer:
        return self.http_get(url)

    def redis(self, host: str, port: int, password: str | None, *command: str) -> Any:
        if Component.REDIS not in self.up:
            raise ProbeFailed("Redis PING failed: ConnectionError")
        return b"PONG"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watch() -> Any:
    clock = Clock()
    policy = Policy(failure_threshold=3, startup_grace=5, backoff_initial=10, budget=2, window=300)
    w = StackWatch(NS, "s", policy=policy, history=10, uptime_rounds=4, clock=clock)
    yield w, clock
    metrics.forget_observability(NS, "s")


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": NS, "name": "s", **labels})


def test_a_hung_kong_is_restarted_after_the_threshold_and_nginx_waits(watch: Any) -> None:
    w, clock = watch
    probes = ScriptedProbes()
    probe_round(w, SPEC, probes, {})
    probes.up.discard(Component.KONG)
    for _ in range(3):
        clock.now += 5
        answers = probe_round(w, SPEC, probes, {})
    assert (
        not answers[Component.KONG].ok and "Kong /status/ready" in answers[Component.KONG].message
    )
    by = {d.component: d for d in w.plan()}
    assert by[Component.KONG].action is Action.RESTART
    assert by[Component.KONG].reverify == (Component.NGINX, Component.BACKEND)
    # Nginx and the backend fail too (through Kong) but are not restarted for it.
    assert by[Component.REDIS].action is Action.NONE
    assert by[Component.NGINX].action is Action.BLOCKED
    assert by[Component.BACKEND].action is Action.BLOCKED
    assert value("kongmasker_component_up", component="nginx") == 0
    assert value("kongmasker_component_up", component="kong") == 0
    assert value("kongmasker_health_checks_total", component="kong") == 4
    assert (
        value("kongmasker_health_check_failures_total", component="kong", reason="HealthGateFailed")
        == 3
    )
    assert value("kongmasker_health_check_success_ratio", component="kong") == 0.25
    assert value("kongmasker_health_check_duration_seconds_count", component="redis") == 4
    assert value("kongmasker_stack_uptime_ratio") == 0.25

    w.record_restart(Component.KONG, by[Component.KONG].reason)
    assert value("kongmasker_recovery_actions_total", component="kong", reason="ProbesFailing") == 1
    probes.up.add(Component.KONG)
    clock.now += 6
    probe_round(w, SPEC, probes, {})
    assert all(d.action is Action.NONE for d in w.plan())
    assert value("kongmasker_component_up", component="kong") == 1


def test_exits_escalate_past_the_budget_and_publish_it(watch: Any) -> None:
    w, clock = watch
    for _ in range(2):
        clock.now += 20
        w.record_exit(Component.REDIS)
        [redis, *_rest] = w.plan()
        assert redis.action is Action.RESTART and redis.reason is Reason.CONTAINER_EXITED
        w.record_restart(Component.REDIS, redis.reason)
    clock.now += 20
    w.record_exit(Component.REDIS)
    redis = w.plan()[0]
    assert redis.action is Action.ESCALATE and redis.reason is Reason.RESTART_BUDGET_EXHAUSTED
    assert value("kongmasker_restart_budget_exhausted", component="redis") == 1
    assert value("kongmasker_restart_budget_exhausted", component="kong") == 0
    clock.now += 400  # the window frees up
    assert w.plan()[0].action is Action.RESTART
    assert value("kongmasker_restart_budget_exhausted", component="redis") == 0


def test_uptime_ratio_covers_the_recent_rounds_only(watch: Any) -> None:
    w, _ = watch
    for up in (False, False, True, True, True, True):
        w.record_round(up)
    assert value("kongmasker_stack_uptime_ratio") == 1.0
    assert w.record_round(False) == 0.75
