"""One stack's health watch as a single `tick()`: probe round, recovery plan carried out
through the Runtime, component counters mirrored, masking canary when due. It returns the
Events to post and the condition verdicts to merge, so that a kopf daemon only has to call it
every probe interval (in a thread) and hand the results to the status code.

    monitor = StackMonitor("default", "demo", components=START_ORDER)
    result = monitor.tick(spec, ref, runtime, probes, secrets)
    post(result.events); merge(result.verdicts)

Restarts made here are of containers that exist: a missing container is the reconcile's job
(drift repair re-creates it), not recovery's. Exits seen by the event stream are passed to
`record_exit`; the next tick counts them against the restart budget whoever started the
container again (Docker's restart policy, usually within a second, or this watch), so that
one budget covers every path:

* Docker's `unless-stopped` policy stays the first responder (it needs no operator), but once a
  component has used its budget within the window the watch switches the policy off for that
  container, and back on when the window frees: no restart storm behind the operator's back.
* The reconcile's drift repair asks `Monitors.admit` before starting an exited container.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kongmasker import metrics
from kongmasker.adapters.probes import Probes
from kongmasker.adapters.runtime import Runtime
from kongmasker.api.spec import MonitoringSpec, StackSpec
from kongmasker.api.vocabulary import START_ORDER, Component, ConditionType, Reason
from kongmasker.config import MonitorSettings
from kongmasker.core import canary, mirror, recovery
from kongmasker.core.recovery import Action, Decision, Observation, Policy
from kongmasker.core.render import StackRef
from kongmasker.core.status import EventNote, Verdict, merge_conditions
from kongmasker.core.status import now as status_now
from kongmasker.core.watch import StackWatch, probe_round
from kongmasker.errors import KongMaskerError

__all__ = ["Monitors", "StackMonitor", "TickResult", "Tuning", "conditions_with"]

log = logging.getLogger(__name__)

HUNG_STOP_TIMEOUT = 2
"""Seconds a container restarted for failing its probes gets to exit before SIGKILL."""


@dataclass
class TickResult:
    """What one tick did and what the status should say about it."""

    events: list[EventNote] = field(default_factory=list)
    restarted: list[Component] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    """Degraded (only while a restart budget is exhausted) and MaskingVerified (when the canary
    ran); merge them into the conditions the reconcile writes."""
    canary: canary.CanaryResult | None = None


@dataclass(frozen=True)
class Tuning:
    """The watch settings in force for one stack: its spec.monitoring over the operator's."""

    period: float
    probe_timeout: float
    canary_period: float
    policy: Policy

    @classmethod
    def of(cls, settings: MonitorSettings, probe_timeout: float, spec: MonitoringSpec) -> Tuning:
        def pick(own: float | None, default: float) -> float:
            return default if own is None else own

        initial = pick(spec.backoff, settings.backoff_initial)
        policy = Policy(
            failure_threshold=int(pick(spec.failure_threshold, settings.failure_threshold)),
            startup_grace=pick(spec.startup_grace, settings.startup_grace),
            backoff_initial=initial,
            backoff_max=max(initial, pick(spec.max_backoff, settings.backoff_max)),
            budget=int(pick(spec.restart_budget, settings.restart_budget)),
            window=pick(spec.budget_window, settings.restart_window),
        )
        return cls(
            period=pick(spec.probe_period, settings.interval),
            probe_timeout=pick(spec.probe_timeout, probe_timeout),
            canary_period=pick(spec.canary_period, settings.canary_interval),
            policy=policy,
        )


@dataclass
class StackMonitor:
    namespace: str
    name: str
    policy: Policy = field(default_factory=Policy)
    canary_interval: float = 60.0
    """Seconds between canary runs (0 disables the canary)."""
    canary_per_type_timing: bool = True
    stop_timeout: int = 10
    """Grace given to a container the watch restarts (one failing its probes gets at most
    HUNG_STOP_TIMEOUT) before Docker kills it."""
    probe_timeout: float = 3.0
    """Timeout of the metrics reads (the probes carry their own)."""
    components: tuple[Component, ...] = START_ORDER
    clock: Callable[[], float] = time.monotonic
    watch: StackWatch = field(init=False)
    _mirror: metrics.CumulativeMirror = field(init=False, default_factory=metrics.CumulativeMirror)
    _last_canary: float | None = field(init=False, default=None)
    _last_masking: bool | None = field(init=False, default=None)
    _canary_report: dict[str, Any] | None = field(init=False, default=None)
    _reported: dict[str, Any] | None = field(init=False, default=None)
    _reported_at: float | None = field(init=False, default=None)
    report_every: float = 60.0
    """Seconds after which status.watch is rewritten even if only latencies changed."""
    _escalated: set[Component] = field(init=False, default_factory=set)
    _auto_off: set[Component] = field(init=False, default_factory=set)
    """Components whose container has Docker's restart policy switched off (budget used)."""

    def __post_init__(self) -> None:
        self.watch = StackWatch(self.namespace, self.name, policy=self.policy, clock=self.clock)

    def retune(self, tuning: Tuning) -> None:
        """Apply the stack's current settings (its spec may have changed since the last round);
        the probe, exit and restart history is kept."""
        self.policy = self.watch.policy = tuning.policy
        self.canary_interval = tuning.canary_period
        self.probe_timeout = tuning.probe_timeout

    def record_exit(self, component: Component, code: int | None = None) -> None:
        """The event stream saw the component's container exit on its own."""
        self.watch.record_exit(component, code=code)

    def admit_restart(self, component: Component) -> tuple[str, str] | None:
        """The reconcile found `component`'s container exited and wants to start it: None
        (go ahead; counted as a restart) or (reason, message): backoff or budget."""
        # Exited "after" any restart counted so far: the container is down right now.
        obs = Observation(exited_at=math.inf)
        decision = recovery.decide(component, self.clock(), obs, self.watch.restarts(), self.policy)
        if decision.action is Action.RESTART:
            self.watch.record_restart(component, Reason.CONTAINER_EXITED)
            return None
        return str(decision.reason), decision.message

    def tick(
        self,
        spec: StackSpec,
        ref: StackRef,
        runtime: Runtime,
        probes: Probes,
        secrets: Mapping[str, str],
    ) -> TickResult:
        """One round; never raises for what the stack or the engine does wrong."""
        result = TickResult()
        self._account_exits(ref, runtime, result)
        answers = probe_round(self.watch, spec, probes, secrets, components=self.components)
        result.decisions = [d for d in self.watch.plan() if d.component in self.components]
        for decision in result.decisions:
            self._carry_out(decision, ref, runtime, result)
        self._sync_auto_restart(ref, runtime, result)
        if self._escalated:
            worst = [d for d in result.decisions if d.action is Action.ESCALATE]
            message = "; ".join(d.message for d in worst)
            result.verdicts.append(
                Verdict(ConditionType.DEGRADED, True, str(Reason.RESTART_BUDGET_EXHAUSTED), message)
            )
        down = [c for c, a in answers.items() if not a.ok]
        down += [c for c in (Component.KONG, Component.BACKEND) if c not in self.components]
        mirrored = mirror.mirror_stack(
            spec, self.namespace, self.name, self._mirror, timeout=self.probe_timeout, skip=down
        )
        for comp, error in mirrored.errors.items():
            log.debug("metrics of %s/%s %s not mirrored: %s", ref.namespace, ref.name, comp, error)
        # With a component down the canary can only time out (10 s, holding the stack's lock)
        # and say what the probes already said; it runs once the stack is whole again.
        if self._canary_due() and not any(not a.ok for a in answers.values()):
            self._run_canary(spec, result)
        return result

    def status_report(self, at: str) -> dict[str, Any] | None:
        """status.watch if it is worth a write now: a probe result, a failure count, a restart
        count or the canary changed, or `report_every` passed (latencies alone change every
        round; writing them each round would cost one API write per stack per round)."""
        comps = {str(c): r for c in self.components if (r := self.watch.report(c)) is not None}
        report: dict[str, Any] = {"lastProbeTime": at, "components": comps}
        if self._canary_report is not None:
            report["canary"] = self._canary_report
        now = self.clock()
        material = _without(report, {"lastProbeTime", "latencySeconds", "successRatio"})
        stale = self._reported_at is None or now - self._reported_at >= self.report_every
        if not stale and material == self._reported:
            return None
        self._reported, self._reported_at = material, now
        return report

    def forget(self) -> None:
        """Drop the stack's series (on delete)."""
        metrics.forget_observability(self.namespace, self.name)

    def _account_exits(self, ref: StackRef, runtime: Runtime, result: TickResult) -> None:
        """Exits already undone by someone else (Docker's restart policy) are restarts too."""
        for comp in self.components:
            if self.watch.pending_exit(comp) is None:
                continue
            try:
                info = runtime.get_container(ref.container_name(comp))
            except KongMaskerError:
                continue
            if info is None or not info.running:
                continue  # still down: plan() restarts it (or the reconcile re-creates it)
            self.watch.record_restart(comp, Reason.CONTAINER_EXITED)
            code = self.watch.exit_code(comp)
            used = self.watch.recent_restarts(comp)
            note = f"{comp}: container exited" + (f" with code {code}" if code is not None else "")
            note += (
                f"; Docker's restart policy started it again (restart {used} of "
                f"{self.policy.budget} within {self.policy.window:g}s)"
            )
            if dependents := recovery.dependents(comp):
                note += f", re-verifying {', '.join(map(str, dependents))}"
            result.restarted.append(comp)
            result.events.append(EventNote(str(Reason.CONTAINER_EXITED), note, warning=True))

    def _sync_auto_restart(self, ref: StackRef, runtime: Runtime, result: TickResult) -> None:
        """Docker's restart policy off while a component's budget is used up, on otherwise."""
        for comp in self.components:
            used_up = self.watch.recent_restarts(comp) >= self.policy.budget
            if used_up == (comp in self._auto_off):
                continue
            try:
                info = runtime.get_container(ref.container_name(comp))
                if info is None:
                    continue
                runtime.set_auto_restart(info.id, not used_up)
            except KongMaskerError as exc:
                log.warning(
                    "%s/%s %s: restart policy not changed: %s", ref.namespace, ref.name, comp, exc
                )
                continue
            if used_up:
                self._auto_off.add(comp)
                note = (
                    f"{comp}: {self.policy.budget} restarts within {self.policy.window:g}s used "
                    "the budget; Docker's restart policy is off for it until the window frees"
                )
                result.events.append(
                    EventNote(str(Reason.RESTART_BUDGET_EXHAUSTED), note, warning=True)
                )
            else:
                self._auto_off.discard(comp)
                note = f"{comp}: restart budget free again; Docker's restart policy back on"
                result.events.append(EventNote("RestartPolicyRestored", note))

    def _carry_out(
        self, decision: Decision, ref: StackRef, runtime: Runtime, result: TickResult
    ) -> None:
        comp = decision.component
        if decision.action is Action.ESCALATE:
            if comp not in self._escalated:
                self._escalated.add(comp)
                result.events.append(
                    EventNote(str(Reason.RESTART_BUDGET_EXHAUSTED), decision.message, warning=True)
                )
            return
        self._escalated.discard(comp)
        if decision.action is not Action.RESTART:
            return
        try:
            info = runtime.get_container(ref.container_name(comp))
            if info is None:
                return  # nothing to restart: the reconcile re-creates it
            if info.status == "restarting":
                return  # Docker's policy is on it; the next round counts that restart
            if info.running:
                # Failing every probe, it serves nothing: no drain to wait for.
                hung = decision.reason is Reason.PROBES_FAILING
                grace = min(self.stop_timeout, HUNG_STOP_TIMEOUT) if hung else self.stop_timeout
                runtime.stop_container(info.id, timeout=grace)
            runtime.start_container(info.id)
        except KongMaskerError as exc:
            result.events.append(
                EventNote("RestartFailed", f"{comp}: restart failed: {exc.message}", warning=True)
            )
            return
        self.watch.record_restart(comp, decision.reason or "")
        result.restarted.append(comp)
        note = f"{decision.message}; restarted"
        if decision.reverify:
            note += f", re-verifying {', '.join(map(str, decision.reverify))}"
        result.events.append(EventNote(str(decision.reason), note, warning=True))

    def _canary_due(self) -> bool:
        if self.canary_interval <= 0:
            return False
        now = self.clock()
        return self._last_canary is None or now - self._last_canary >= self.canary_interval

    def _run_canary(self, spec: StackSpec, result: TickResult) -> None:
        self._last_canary = self.clock()
        outcome = canary.run(
            canary.CanaryTarget.from_spec(spec), per_type_timing=self.canary_per_type_timing
        )
        canary.record(outcome, self.namespace, self.name)
        result.canary = outcome
        self._canary_report = {
            "lastRunTime": status_now(),
            "result": {True: "Passed", False: "Failed", None: "Unknown"}[outcome.ok],
            "reason": str(outcome.reason),
            "accuracy": round(outcome.accuracy, 4),
            "typesChecked": len(outcome.types),
        }
        if outcome.latency_seconds is not None:
            self._canary_report["latencySeconds"] = round(outcome.latency_seconds, 4)
        result.verdicts.append(canary.verdict(outcome))
        if outcome.ok is not None and outcome.ok != self._last_masking:
            warning = not outcome.ok
            result.events.append(EventNote(str(outcome.reason), outcome.message, warning=warning))
        if outcome.ok is not None:
            self._last_masking = outcome.ok


def _without(value: Any, keys: set[str]) -> Any:
    """`value` with the given keys dropped at every depth (for "did anything else change")."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return value


def conditions_with(
    old: Iterable[Mapping[str, Any]], verdicts: list[Verdict], generation: int, at: str
) -> list[dict[str, Any]]:
    """The stack's condition list with `verdicts` merged in (transition times kept while a
    status does not change) and every other condition left exactly as it was."""
    previous = [dict(c) for c in old]
    judged = {str(v.type) for v in verdicts}
    merged = {
        c.type: c.to_dict()
        for c in merge_conditions(previous, verdicts, generation, at)
        if c.type in judged
    }
    out = [merged.pop(str(c.get("type")), c) for c in previous]
    return out + list(merged.values())


class Monitors:
    """The live StackMonitor of each stack, by UID: the watch daemon registers its monitor,
    the Docker-event daemon reports exits to it (and wakes the watch), and the reconcile asks
    it before starting an exited container. Without a registered monitor (watch off) every
    restart is admitted, as before the watch existed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._monitors: dict[str, StackMonitor] = {}
        self._wakes: dict[str, threading.Event] = {}

    def add(self, uid: str, monitor: StackMonitor) -> threading.Event:
        """Register `monitor`; returns the event set when the stack needs a tick now."""
        with self._lock:
            self._monitors[uid] = monitor
            return self._wakes.setdefault(uid, threading.Event())

    def drop(self, uid: str) -> None:
        with self._lock:
            self._monitors.pop(uid, None)
            self._wakes.pop(uid, None)

    def get(self, uid: str) -> StackMonitor | None:
        with self._lock:
            return self._monitors.get(uid)

    def exited(self, uid: str, component: Component, code: int | None = None) -> bool:
        """An unrequested exit of one of the stack's containers; False if nobody watches."""
        with self._lock:
            monitor, wake = self._monitors.get(uid), self._wakes.get(uid)
        if monitor is None or wake is None:
            return False
        monitor.record_exit(component, code)
        wake.set()
        return True

    def admit(self, uid: str, component: Component) -> tuple[str, str] | None:
        """The reconcile's restart guard: None to go ahead, else (reason, message)."""
        monitor = self.get(uid)
        return None if monitor is None else monitor.admit_restart(component)
