"""The watch memory of one stack: probe results, container exits and restarts, kept between
probe rounds so that core/recovery.py can decide, and published as the availability and
recovery metrics.

    watch = StackWatch("default", "demo")
    probe_round(watch, spec, probes, secrets)          # runs the health gates, records
    watch.record_exit(Component.KONG)                  # from the Docker event stream
    for decision in watch.plan():                      # restart / wait / escalate, in order
        if decision.action is Action.RESTART:
            ...restart the container...
            watch.record_restart(decision.component, decision.reason)

Only `probe_round` does I/O (through the Probes protocol, with the operator's own health
gates); everything else is bookkeeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kongmasker import metrics
from kongmasker.adapters.probes import Probes
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import START_ORDER, Component, Reason
from kongmasker.core import health, recovery
from kongmasker.core.recovery import Action, Decision, Observation, Policy, Probe, Restart

__all__ = ["StackWatch", "probe_round"]


@dataclass
class _Component:
    probes: deque[Probe]
    exited_at: float | None = None
    exit_code: int | None = None
    last_seconds: float | None = None
    """Duration of the last probe."""


@dataclass
class StackWatch:
    """Probe, exit and restart history of one stack (thread-safe enough for one owner)."""

    namespace: str
    name: str
    policy: Policy = field(default_factory=Policy)
    history: int = 30
    """Probes kept per component (enough for the failure threshold and a success ratio)."""
    uptime_rounds: int = 120
    """Probe rounds the uptime ratio is computed over."""
    clock: Callable[[], float] = time.monotonic
    _components: dict[Component, _Component] = field(default_factory=dict)
    _restarts: list[Restart] = field(default_factory=list)
    _rounds: deque[bool] = field(default_factory=deque)

    def _comp(self, component: Component) -> _Component:
        if component not in self._components:
            self._components[component] = _Component(deque(maxlen=self.history))
        return self._components[component]

    @property
    def _labels(self) -> tuple[str, str]:
        return self.namespace, self.name

    def record_probe(
        self, component: Component, ok: bool, message: str = "", duration: float | None = None
    ) -> None:
        """One probe result (and its duration, seconds) of one component."""
        comp = self._comp(component)
        comp.probes.append(Probe(self.clock(), ok, message))
        labels = (*self._labels, str(component))
        metrics.HEALTH_CHECKS.labels(*labels).inc()
        if not ok:
            metrics.HEALTH_CHECK_FAILURES.labels(*labels, str(Reason.HEALTH_GATE_FAILED)).inc()
        if duration is not None:
            comp.last_seconds = duration
            metrics.HEALTH_CHECK_SECONDS.labels(*labels).observe(duration)
        metrics.COMPONENT_UP.labels(*labels).set(1 if ok else 0)
        passed = sum(p.ok for p in comp.probes)
        metrics.HEALTH_CHECK_SUCCESS_RATIO.labels(*labels).set(passed / len(comp.probes))

    def record_round(self, all_up: bool) -> float:
        """Close a probe round; returns (and publishes) the uptime ratio over recent rounds."""
        self._rounds.append(all_up)
        while len(self._rounds) > self.uptime_rounds:
            self._rounds.popleft()
        ratio = sum(self._rounds) / len(self._rounds)
        metrics.STACK_UPTIME_RATIO.labels(*self._labels).set(ratio)
        return ratio

    def record_exit(
        self, component: Component, at: float | None = None, code: int | None = None
    ) -> None:
        """The event stream saw the component's container exit without being asked to."""
        comp = self._comp(component)
        comp.exited_at = self.clock() if at is None else at
        comp.exit_code = code

    def pending_exit(self, component: Component) -> float | None:
        """When the component last exited, if no restart has been counted since."""
        comp = self._components.get(component)
        if comp is None or comp.exited_at is None:
            return None
        last = recovery.last_restart(self._restarts, [component])
        return comp.exited_at if last is None or comp.exited_at > last else None

    def exit_code(self, component: Component) -> int | None:
        comp = self._components.get(component)
        return comp.exit_code if comp else None

    def recent_restarts(self, component: Component) -> int:
        """Restarts of `component` counted within the policy's window, up to now."""
        return sum(1 for r in self.restarts() if r.component == component)

    def record_restart(self, component: Component, reason: Reason | str) -> None:
        """Auto-recovery restarted `component` (count it against the budget)."""
        now = self.clock()
        self._restarts.append(Restart(now, component, str(reason)))
        horizon = now - self.policy.window
        self._restarts = [r for r in self._restarts if r.at > horizon]
        metrics.RECOVERY_ACTIONS.labels(*self._labels, str(component), str(reason)).inc()

    def report(self, component: Component) -> dict[str, object] | None:
        """The component's probe record for status.watch (None before its first probe)."""
        comp = self._components.get(component)
        if comp is None or not comp.probes:
            return None
        last = comp.probes[-1]
        failures = 0
        for probe in reversed(comp.probes):
            if probe.ok:
                break
            failures += 1
        out: dict[str, object] = {
            "probe": "Passed" if last.ok else "Failed",
            "consecutiveFailures": failures,
            "successRatio": round(sum(p.ok for p in comp.probes) / len(comp.probes), 3),
            "restartsInWindow": self.recent_restarts(component),
        }
        if not last.ok:
            out["message"] = last.message
        if comp.last_seconds is not None:
            out["latencySeconds"] = round(comp.last_seconds, 4)
        return out

    def restarts(self) -> list[Restart]:
        """Restarts counted within the window, oldest first."""
        horizon = self.clock() - self.policy.window
        return [r for r in self._restarts if r.at > horizon]

    def observations(self) -> dict[Component, Observation]:
        return {c: Observation(tuple(s.probes), s.exited_at) for c, s in self._components.items()}

    def plan(self) -> list[Decision]:
        """Recovery decisions now, in start order; publishes restart-budget exhaustion."""
        decisions = recovery.plan(self.clock(), self.observations(), self._restarts, self.policy)
        for d in decisions:
            exhausted = 1 if d.action is Action.ESCALATE else 0
            metrics.RESTART_BUDGET_EXHAUSTED.labels(*self._labels, str(d.component)).set(exhausted)
        return decisions


def probe_round(
    watch: StackWatch,
    spec: StackSpec,
    probes: Probes,
    secrets: Mapping[str, str],
    *,
    components: tuple[Component, ...] = START_ORDER,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[Component, health.Health]:
    """Run every component's health gate once, record the results; returns the answers.

    The gates run side by side: a hung component costs the round one probe timeout, not one
    per gate that reaches it (Nginx's and Backend's gates also ask Kong), which would stretch
    the time to detect a hang to several times `failure_threshold * period`."""

    def gate(comp: Component) -> tuple[health.Health, float]:
        started = timer()
        answer = health.check(comp, spec, probes, secrets)
        return answer, timer() - started

    with ThreadPoolExecutor(max_workers=len(components), thread_name_prefix="probe") as pool:
        results = dict(zip(components, pool.map(gate, components), strict=True))
    answers: dict[Component, health.Health] = {}
    for comp in components:  # recorded in start order, whatever finished first
        answer, seconds = results[comp]
        watch.record_probe(comp, answer.ok, answer.message, seconds)
        answers[comp] = answer
    watch.record_round(all(a.ok for a in answers.values()))
    return answers
