"""One restart budget for every path an exited container takes back to running: Docker's
restart policy (counted when the watch sees the container running again), the watch's own
start, and the reconcile's drift repair (which asks `Monitors.admit` first).

The container engine is the in-memory FakeRuntime (no Docker here: the real engine is
exercised by tests/e2e/test_recovery.py); probes answer from the fake containers' state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.unit.operator.operator_fakes import SECRETS, FakeProbes, FakeRuntime

from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import START_ORDER, Component, ConditionType, Reason
from kongmasker.config import Settings
from kongmasker.core import reconcile as core
from kongmasker.core.monitor import Monitors, StackMonitor
from kongmasker.core.recovery import Policy
from kongmasker.core.render import StackRef, render_stack
from kongmasker.errors import NotFound

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def running_stack(runtime: FakeRuntime, ref: StackRef, spec: StackSpec) -> None:
    for want in render_stack(ref, spec, SECRETS, 20).values():
        info = runtime.create_container(want.container)
        runtime.start_container(info.id)
    runtime.log.clear()


def monitor(clock: Clock, budget: int = 2) -> StackMonitor:
    policy = Policy(budget=budget, window=600, backoff_initial=5, startup_grace=0)
    return StackMonitor("default", "demo", policy=policy, canary_interval=0, clock=clock)


def set_status(runtime: FakeRuntime, ref: StackRef, comp: Component, status: str) -> str:
    info = runtime.get_container(ref.container_name(comp))
    assert info is not None
    runtime.containers[info.id] = replace(info, status=status)
    return info.id


def test_a_restart_by_dockers_policy_is_counted_and_reported_not_repeated(
    runtime: FakeRuntime, probes: FakeProbes, ref: StackRef, spec: StackSpec
) -> None:
    running_stack(runtime, ref, spec)
    clock = Clock()
    mon = monitor(clock)
    mon.record_exit(Component.KONG, code=137)  # Docker already started it again
    result = mon.tick(spec, ref, runtime, probes, SECRETS)
    assert result.restarted == [Component.KONG]
    assert mon.watch.recent_restarts(Component.KONG) == 1
    [event] = result.events
    assert event.reason == "ContainerExited" and event.warning
    assert "kong: container exited with code 137" in event.message
    assert "Docker's restart policy started it again (restart 1 of 2" in event.message
    assert "re-verifying nginx, backend" in event.message
    assert not [e for e in runtime.log if e[0] in ("stop", "start")], "not restarted twice"
    # Counted once: the next round has nothing to add.
    clock.now += 10
    again = mon.tick(spec, ref, runtime, probes, SECRETS)
    assert again.restarted == [] and mon.watch.recent_restarts(Component.KONG) == 1


def test_an_exited_container_still_down_is_started_by_the_watch(
    runtime: FakeRuntime, probes: FakeProbes, ref: StackRef, spec: StackSpec
) -> None:
    running_stack(runtime, ref, spec)
    cid = set_status(runtime, ref, Component.NGINX, "exited")
    mon = monitor(Clock())
    mon.record_exit(Component.NGINX, code=1)
    result = mon.tick(spec, ref, runtime, probes, SECRETS)
    assert result.restarted == [Component.NGINX]
    assert runtime.containers[cid].running
    assert ("start", ref.container_name(Component.NGINX)) in runtime.log


def test_a_used_budget_turns_dockers_policy_off_until_the_window_frees(
    runtime: FakeRuntime, probes: FakeProbes, ref: StackRef, spec: StackSpec
) -> None:
    running_stack(runtime, ref, spec)
    clock = Clock()
    mon = monitor(clock, budget=2)
    cid = runtime.get_container(ref.container_name(Component.KONG)).id  # type: ignore[union-attr]
    reasons = []
    for _ in range(2):
        mon.record_exit(Component.KONG)
        reasons += [e.reason for e in mon.tick(spec, ref, runtime, probes, SECRETS).events]
        clock.now += 30
    assert reasons == ["ContainerExited", "ContainerExited", "RestartBudgetExhausted"]
    assert runtime.auto_restart[cid] is False, "no third restart behind the operator's back"

    # A third exit now stays down: the watch escalates instead of restarting.
    set_status(runtime, ref, Component.KONG, "exited")
    mon.record_exit(Component.KONG)
    result = mon.tick(spec, ref, runtime, probes, SECRETS)
    assert not runtime.containers[cid].running
    assert [str(v.type) for v in result.verdicts] == [str(ConditionType.DEGRADED)]
    assert result.verdicts[0].reason == str(Reason.RESTART_BUDGET_EXHAUSTED)

    # Once the first restarts leave the window, Kong is started and the policy is back on.
    clock.now += 600
    later = mon.tick(spec, ref, runtime, probes, SECRETS)
    assert runtime.containers[cid].running
    assert runtime.auto_restart[cid] is True
    assert "RestartPolicyRestored" in [e.reason for e in later.events]


def test_the_reconciles_restart_guard_shares_the_budget() -> None:
    clock = Clock()
    monitors = Monitors()
    mon = monitor(clock, budget=2)
    monitors.add("uid-1", mon)
    assert monitors.admit("uid-1", Component.REDIS) is None
    refusal = monitors.admit("uid-1", Component.REDIS)
    assert refusal is not None and refusal[0] == "RestartBackoff"
    clock.now += 5
    assert monitors.admit("uid-1", Component.REDIS) is None
    clock.now += 60
    reason, message = monitors.admit("uid-1", Component.REDIS)  # type: ignore[misc]
    assert reason == "RestartBudgetExhausted" and "budget 2 exhausted" in message
    # Without a watch (monitor off) every start is admitted, as before.
    assert monitors.admit("other-uid", Component.REDIS) is None
    assert monitors.exited("other-uid", Component.REDIS, 1) is False


class Status:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append(status)


class Secrets:
    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        values = {"redis": SECRETS["REDIS_PASSWORD"], "up": SECRETS["ANTHROPIC_API_KEY"]}
        if name not in values:
            raise NotFound(name)
        return {"password": values[name].encode(), "k": values[name].encode()}


class Refuse:
    def __init__(self) -> None:
        self.asked: list[Component] = []

    def admit(self, uid: str, component: Component) -> tuple[str, str] | None:
        self.asked.append(component)
        return "RestartBudgetExhausted", f"{component}: budget 5 exhausted"


def test_a_refused_start_holds_the_component_and_its_dependents(
    runtime: FakeRuntime,
    probes: FakeProbes,
    ref: StackRef,
    spec: StackSpec,
    settings: Settings,
) -> None:
    from tests.unit.operator.operator_fakes import SPEC

    running_stack(runtime, ref, spec)
    kong = set_status(runtime, ref, Component.KONG, "exited")
    guard = Refuse()
    status = Status()
    deps = core.Deps(
        runtime_for=lambda url, tls: runtime,
        probes=probes,
        secrets=Secrets(),
        status=status,
        settings=settings,
        restarts=guard,
    )
    obj = core.StackObject(ref, 1, SPEC, {}, {})
    result = core.reconcile(obj, deps)
    assert guard.asked == [Component.KONG]
    assert not runtime.containers[kong].running, "a refused start starts nothing"
    assert not [e for e in runtime.log if e[0] in ("start", "stop", "remove", "create")]
    conditions = {c["type"]: c for c in status.patches[-1]["conditions"]}
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "RestartBudgetExhausted"
    assert "kong: budget 5 exhausted; not started" in conditions["Degraded"]["message"]
    assert conditions["Ready"]["status"] == "False"
    assert result.status is not None and result.status["phase"] == "Degraded"
    assert [c for c in START_ORDER if c is not Component.KONG]  # the order is what we think


def test_status_watch_reports_probes_restarts_and_is_written_only_when_worth_it(
    runtime: FakeRuntime, probes: FakeProbes, ref: StackRef, spec: StackSpec
) -> None:
    running_stack(runtime, ref, spec)
    clock = Clock()
    mon = monitor(clock)
    mon.tick(spec, ref, runtime, probes, SECRETS)
    first = mon.status_report("2026-11-26T10:00:00Z")
    assert first is not None and first["lastProbeTime"] == "2026-11-26T10:00:00Z"
    kong = first["components"]["kong"]
    assert kong["probe"] == "Passed" and kong["consecutiveFailures"] == 0
    assert kong["restartsInWindow"] == 0 and kong["latencySeconds"] >= 0
    assert set(first["components"]) == {"redis", "kong", "nginx", "backend"}

    clock.now += 10  # same results, new latencies: not worth a write
    mon.tick(spec, ref, runtime, probes, SECRETS)
    assert mon.status_report("2026-11-26T10:00:10Z") is None

    probes.sick.add("nginx")  # a result changed: written at once, with the reason
    clock.now += 10
    mon.tick(spec, ref, runtime, probes, SECRETS)
    failed = mon.status_report("2026-11-26T10:00:20Z")
    assert failed is not None
    nginx = failed["components"]["nginx"]
    assert nginx["probe"] == "Failed" and nginx["consecutiveFailures"] == 1
    assert nginx["message"] and nginx["successRatio"] < 1

    probes.sick.clear()  # healthy again: written
    clock.now += 10
    mon.tick(spec, ref, runtime, probes, SECRETS)
    healed = mon.status_report("2026-11-26T10:00:30Z")
    assert healed is not None and healed["components"]["nginx"]["probe"] == "Passed"
    clock.now += 10
    mon.tick(spec, ref, runtime, probes, SECRETS)
    assert mon.status_report("2026-11-26T10:00:40Z") is None
    clock.now += 61  # nothing new for a minute: rewritten anyway (fresh latencies and time)
    mon.tick(spec, ref, runtime, probes, SECRETS)
    assert mon.status_report("2026-11-26T10:01:41Z") is not None


def test_deleting_a_stack_whose_engine_was_never_reached_does_not_hang(
    settings: Settings,
) -> None:
    from tests.unit.operator.operator_fakes import SPEC

    from kongmasker.errors import RuntimeUnavailable, TransientError

    def unreachable(url: str, tls: Any) -> Any:
        raise RuntimeUnavailable("cannot reach the Docker engine at tcp://10.0.0.9:2376: CA")

    deps = core.Deps(
        runtime_for=unreachable,
        probes=None,  # type: ignore[arg-type]
        secrets=Secrets(),
        status=Status(),
        settings=settings,
    )
    ref = StackRef("default", "demo", "uid-1")
    never = core.delete(core.StackObject(ref, 1, SPEC, {}, {}), deps)
    [event] = never.events
    assert event.warning and "never reached" in event.message and "nothing" in event.message
    ran = {"components": {"redis": {"containerID": "abc123", "state": "Healthy"}}}
    with pytest.raises(TransientError):  # containers may be running there: keep trying
        core.delete(core.StackObject(ref, 1, SPEC, ran, {}), deps)
