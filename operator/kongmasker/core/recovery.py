"""Auto-recovery decisions: restart, wait (backoff) or escalate, per component. Pure: no I/O
and no clock; the caller passes `now` and the probe and restart history it keeps.

    >>> obs = {Component.KONG: Observation(exited_at=100.0)}
    >>> [str(d.action) for d in plan(101.0, obs, restarts=())]
    ['None', 'Restart', 'None', 'None']

The rules, and why:

1. A component is *failing* when its container exited (seen in the Docker event stream; acted
   on at once, whatever the probes say) or when its last `failure_threshold` probes all failed
   (a hung process: Docker's restart policy never notices one, which is why autoheal exists).
   Only probes taken `startup_grace` seconds after the last restart of the component *or of
   any of its dependencies* count: failures caused by a dependency that has since been
   restarted must not condemn the dependent ("re-verify the dependents").
2. A failing component whose dependency is failing is *blocked*, not restarted: its failure most
   likely follows from the dependency's, and healing goes in dependency order
   Redis -> Kong -> Nginx -> Backend.
3. The first restart within the window happens at once; the n-th waits
   `backoff_initial * backoff_factor ** (n - 1)` seconds (capped at `backoff_max`) after the
   previous one.
4. At most `budget` restarts per component within `window` seconds. Past that the decision is
   *escalate*: no restart, the stack goes Degraded with reason RestartBudgetExhausted until the
   oldest restart leaves the window (no restart storm).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kongmasker.api.vocabulary import DEPENDS_ON, START_ORDER, Component, Reason

__all__ = [
    "Action",
    "Decision",
    "Observation",
    "Policy",
    "Probe",
    "Restart",
    "decide",
    "dependencies",
    "dependents",
    "escalations",
    "last_restart",
    "plan",
]


class Action(StrEnum):
    """What to do with one component now."""

    NONE = "None"
    """Healthy, or nothing known against it."""
    OBSERVE = "Observe"
    """Failing probes, below the threshold: keep probing."""
    RESTART = "Restart"
    WAIT = "Wait"
    """Restart wanted, but the backoff since the last restart has not elapsed (see retry_at)."""
    BLOCKED = "Blocked"
    """Failing, but a dependency is failing too: heal the dependency first."""
    ESCALATE = "Escalate"
    """Restart budget exhausted: stop restarting, report Degraded."""


@dataclass(frozen=True)
class Probe:
    """One probe result of one component at time `at` (seconds, the caller's clock)."""

    at: float
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Restart:
    """A restart the operator performed (whatever the cause)."""

    at: float
    component: Component
    reason: str = ""


@dataclass(frozen=True)
class Observation:
    """What the caller knows about one component: recent probes (oldest first) and when the
    event stream last reported its container exiting on its own (None if it did not)."""

    probes: Sequence[Probe] = ()
    exited_at: float | None = None


@dataclass(frozen=True)
class Policy:
    """Thresholds of auto-recovery (seconds for times)."""

    failure_threshold: int = 3
    """Consecutive failed probes that make a running component failing."""

    startup_grace: float = 10.0
    """Probes this soon after a restart (own or a dependency's) are not held against it."""

    backoff_initial: float = 5.0
    backoff_factor: float = 2.0
    backoff_max: float = 300.0

    budget: int = 5
    """Restarts allowed per component within `window`."""

    window: float = 600.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.budget < 1:
            raise ValueError("failure_threshold and budget must be at least 1")
        if self.window <= 0 or self.backoff_initial < 0 or self.backoff_factor < 1:
            raise ValueError("window > 0, backoff_initial >= 0 and backoff_factor >= 1 required")
        if self.startup_grace < 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("startup_grace >= 0 and backoff_max >= backoff_initial required")

    def backoff(self, recent_restarts: int) -> float:
        """Seconds to wait after the last restart, given `recent_restarts` in the window.

        >>> [Policy().backoff(n) for n in range(5)]
        [0.0, 5.0, 10.0, 20.0, 40.0]
        """
        if recent_restarts <= 0 or self.backoff_initial == 0:
            return 0.0
        # In log space, so that a long history cannot overflow a float.
        n = recent_restarts
        log_delay = math.log(self.backoff_initial) + (n - 1) * math.log(self.backoff_factor)
        if log_delay >= math.log(self.backoff_max):
            return self.backoff_max
        try:  # exact for the usual small histories (5.0, not 4.999...)
            return min(self.backoff_max, self.backoff_initial * self.backoff_factor ** (n - 1))
        except OverflowError:  # a tiny initial delay with a huge power
            return min(self.backoff_max, math.exp(log_delay))


@dataclass(frozen=True)
class Decision:
    """The verdict for one component; `message` is fit for an Event or a condition."""

    component: Component
    action: Action
    reason: Reason | None = None
    message: str = ""
    retry_at: float | None = None
    """WAIT: earliest restart time. ESCALATE: when a budget slot frees up."""
    reverify: tuple[Component, ...] = ()
    """RESTART: the dependents to probe again (and restart if still failing) afterwards."""


def dependencies(component: Component) -> tuple[Component, ...]:
    """Everything `component` depends on, directly or not, in start order."""
    seen: set[Component] = set()
    todo = list(DEPENDS_ON[component])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(DEPENDS_ON[dep])
    return tuple(c for c in START_ORDER if c in seen)


def dependents(component: Component) -> tuple[Component, ...]:
    """Everything that depends on `component`, directly or not, in start order.

    >>> [str(c) for c in dependents(Component.KONG)]
    ['nginx', 'backend']
    """
    return tuple(c for c in START_ORDER if component in dependencies(c))


def last_restart(restarts: Iterable[Restart], components: Iterable[Component]) -> float | None:
    wanted = set(components)
    times = [r.at for r in restarts if r.component in wanted]
    return max(times) if times else None


def _failure(
    component: Component,
    obs: Observation,
    restarts: Sequence[Restart],
    policy: Policy,
) -> tuple[Action, Reason | None, str]:
    """NONE, OBSERVE or RESTART (meaning "failing") with the reason, before budget rules."""
    own = last_restart(restarts, [component])
    if obs.exited_at is not None and (own is None or obs.exited_at > own):
        return Action.RESTART, Reason.CONTAINER_EXITED, f"{component}: container exited"
    reset = last_restart(restarts, [component, *dependencies(component)])
    since = -math.inf if reset is None else reset + policy.startup_grace
    counted = [p for p in obs.probes if p.at >= since]
    failed = 0
    for probe in reversed(counted):
        if probe.ok:
            break
        failed += 1
    if failed == 0:
        return Action.NONE, None, ""
    last = counted[-1].message or "probe failed"
    n = policy.failure_threshold
    if failed < n:
        return Action.OBSERVE, Reason.PROBES_FAILING, f"{component}: {failed}/{n} probes failed"
    return (
        Action.RESTART,
        Reason.PROBES_FAILING,
        f"{component}: {failed} consecutive probes failed (last: {last})",
    )


def decide(
    component: Component,
    now: float,
    obs: Observation,
    restarts: Sequence[Restart],
    policy: Policy | None = None,
) -> Decision:
    """The decision for one component on its own (no dependency blocking; see `plan`)."""
    policy = policy or Policy()
    action, reason, message = _failure(component, obs, restarts, policy)
    if action is not Action.RESTART:
        return Decision(component, action, reason, message)
    recent = sorted(
        r.at for r in restarts if r.component == component and now - policy.window < r.at <= now
    )
    if len(recent) >= policy.budget:
        return Decision(
            component,
            Action.ESCALATE,
            Reason.RESTART_BUDGET_EXHAUSTED,
            f"{message}; {len(recent)} restarts within {policy.window:g}s, budget "
            f"{policy.budget} exhausted: not restarting",
            retry_at=recent[-policy.budget] + policy.window,
        )
    ready_at = recent[-1] + policy.backoff(len(recent)) if recent else now
    if now < ready_at:
        return Decision(
            component,
            Action.WAIT,
            Reason.RESTART_BACKOFF,
            f"{message}; backing off {ready_at - now:.1f}s after restart {len(recent)}",
            retry_at=ready_at,
        )
    return Decision(
        component,
        Action.RESTART,
        reason,
        f"{message}; restart {len(recent) + 1} of {policy.budget} within {policy.window:g}s",
        reverify=dependents(component),
    )


def plan(
    now: float,
    observations: Mapping[Component, Observation],
    restarts: Sequence[Restart],
    policy: Policy | None = None,
) -> list[Decision]:
    """One decision per component, in start order; dependents of a failing component are
    BLOCKED instead of restarted (a missing observation means "nothing known against it")."""
    policy = policy or Policy()
    troubled: set[Component] = set()
    out: list[Decision] = []
    for comp in START_ORDER:
        decision = decide(comp, now, observations.get(comp, Observation()), restarts, policy)
        failing = decision.action not in (Action.NONE, Action.OBSERVE)
        blockers = [d for d in dependencies(comp) if d in troubled]
        if failing and blockers:
            decision = Decision(
                comp,
                Action.BLOCKED,
                Reason.DEPENDENCY_UNHEALTHY,
                f"{decision.message}; waiting for {', '.join(map(str, blockers))} to recover first",
            )
        if failing:
            troubled.add(comp)
        out.append(decision)
    return out


def escalations(decisions: Iterable[Decision]) -> list[Decision]:
    """The decisions that make the stack Degraded (restart budget exhausted)."""
    return [d for d in decisions if d.action is Action.ESCALATE]
