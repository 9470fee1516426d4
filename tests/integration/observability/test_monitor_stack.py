"""StackMonitor.tick (kongmasker.core.monitor) on real containers: the canary verdict, a hung
gateway restarted by the monitor itself, and a second hang past the restart budget that leaves
the stack Degraded with one Event and no further restarts."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest
from prometheus_client import REGISTRY
from tests.integration.observability.obs_support import Stack, hand_wired_stack
from tests.support import wait_until

from kongmasker.adapters.probes import NetProbes
from kongmasker.api.vocabulary import Component, ConditionType, Reason
from kongmasker.core.monitor import StackMonitor, TickResult
from kongmasker.core.recovery import Action, Policy

pytestmark = pytest.mark.integration

NS = "obs-mon"


@pytest.fixture(scope="module")
def stack(docker_host: str, images: dict[str, str]) -> Iterator[Stack]:
    with hand_wired_stack(docker_host, images, NS) as box:
        yield box


def test_monitor_heals_a_hang_then_escalates_past_the_budget(
    stack: Stack, docker_host: str
) -> None:
    monitor = StackMonitor(
        NS,
        stack.ref.name,
        policy=Policy(failure_threshold=2, startup_grace=1, backoff_initial=1, budget=1),
        canary_interval=3600,
        canary_per_type_timing=False,
        stop_timeout=2,
        components=(Component.REDIS, Component.KONG, Component.NGINX),
    )
    probes = NetProbes(timeout=1.0)
    ticks: list[TickResult] = []

    def tick() -> TickResult:
        ticks.append(monitor.tick(stack.spec, stack.ref, stack.runtime, probes, stack.secrets))
        return ticks[-1]

    def up(component: str) -> float | None:
        labels = {"namespace": NS, "name": stack.ref.name, "component": component}
        return REGISTRY.get_sample_value("kongmasker_component_up", labels)

    client = docker.DockerClient(base_url=docker_host)
    try:
        first = tick()
        assert not first.restarted
        masking = [v for v in first.verdicts if v.type is ConditionType.MASKING_VERIFIED]
        assert [(v.ok, v.reason) for v in masking] == [(True, "CanaryPassed")]
        assert [e.reason for e in first.events] == ["CanaryPassed"]

        client.api.kill(stack.ids["kong"], signal="SIGSTOP")
        wait_until(lambda: Component.KONG in tick().restarted, timeout=90, what="kong restarted")
        restart_event = ticks[-1].events[0]
        assert (restart_event.reason, restart_event.warning) == ("ProbesFailing", True)
        assert "re-verifying nginx" in restart_event.message
        wait_until(
            lambda: tick() and up("kong") == 1 and up("nginx") == 1,
            timeout=90,
            what="kong and nginx healthy again",
        )

        # A second hang within the window: budget 1 is spent, so escalate instead of restart.
        client.api.kill(stack.ids["kong"], signal="SIGSTOP")
        before = len(ticks)
        wait_until(
            lambda: any(d.action is Action.ESCALATE for d in tick().decisions),
            timeout=90,
            what="the restart budget to be exhausted",
        )
        for _ in range(2):
            tick()
        later = ticks[before:]
        assert not any(t.restarted for t in later), "no restart once the budget is spent"
        budget_events = [e for t in later for e in t.events if e.reason == "RestartBudgetExhausted"]
        assert len(budget_events) == 1 and budget_events[0].warning
        degraded = [v for v in ticks[-1].verdicts if v.type is ConditionType.DEGRADED]
        assert [(v.ok, v.reason) for v in degraded] == [
            (True, str(Reason.RESTART_BUDGET_EXHAUSTED))
        ]
        exhausted = REGISTRY.get_sample_value(
            "kongmasker_restart_budget_exhausted",
            {"namespace": NS, "name": stack.ref.name, "component": "kong"},
        )
        assert exhausted == 1
        assert stack.runtime.get_container(stack.ids["kong"]).status == "running"  # type: ignore[union-attr]
    finally:
        client.api.kill(stack.ids["kong"], signal="SIGCONT")
        client.close()
        monitor.forget()
