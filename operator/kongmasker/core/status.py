"""Status composition: small functions that turn what a reconcile saw into the status
object (one patch), and the Events that a change of phase or condition deserves.

Conditions keep their lastTransitionTime while their status does not change, as
metav1.Condition requires.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kongmasker.api.status import ComponentStatus, Condition, StackStatus
from kongmasker.api.vocabulary import (
    START_ORDER,
    Component,
    ComponentState,
    ConditionType,
    Phase,
    Reason,
)
from kongmasker.core.health import Health
from kongmasker.core.stack import Observed


@dataclass(frozen=True)
class Verdict:
    """The desired value of one condition."""

    type: ConditionType
    ok: bool | None
    """True/False/None(Unknown)."""
    reason: str
    message: str


@dataclass(frozen=True)
class EventNote:
    """An Event to post: `warning` picks the type, reason is CamelCase."""

    reason: str
    message: str
    warning: bool = False


def now() -> str:
    """RFC 3339 UTC timestamp with seconds precision (metav1.Time)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    old: Iterable[Mapping[str, Any]], verdicts: Iterable[Verdict], generation: int, at: str
) -> list[Condition]:
    """New condition list: changed statuses get `at` as transition time, others keep theirs."""
    previous = {c.get("type"): Condition.from_dict(dict(c)) for c in old}
    out = []
    for v in verdicts:
        status = "Unknown" if v.ok is None else ("True" if v.ok else "False")
        before = previous.get(str(v.type))
        since = before.last_transition_time if before and before.status == status else at
        reason, message = v.reason, v.message
        if _escalated(before) and v.type == ConditionType.DEGRADED and v.ok:
            # Auto-recovery gave up (issue 5): that stays the reason while still degraded.
            reason, message = before.reason, before.message  # type: ignore[union-attr]
        out.append(Condition(str(v.type), status, reason, message, since, generation))
    judged = {str(v.type) for v in verdicts}
    # Conditions the health watch owns (handlers/monitor.py) are kept as they are.
    out += [c for t, c in previous.items() if t in WATCH_CONDITIONS and t not in judged]
    return out


WATCH_CONDITIONS = frozenset({str(ConditionType.MASKING_VERIFIED)})


def _escalated(before: Condition | None) -> bool:
    return (
        before is not None
        and before.type == ConditionType.DEGRADED
        and before.status == "True"
        and before.reason == Reason.RESTART_BUDGET_EXHAUSTED
    )


def components(
    observed: Mapping[Component, Observed],
    health: Mapping[Component, Health],
    held_back: Iterable[Component] = (),
    previous: Mapping[str, Any] | None = None,
) -> dict[str, ComponentStatus]:
    """Per-component status from the containers seen and the gate answers.

    A running container not probed yet keeps the health `previous` (the last status)
    reported for the same container, so a progress report does not blank it out.
    """
    held = set(held_back)
    before = previous or {}
    out: dict[str, ComponentStatus] = {}
    for comp in START_ORDER:
        info = observed[comp].container if comp in observed else None
        h = health.get(comp)
        if info is None:
            state = ComponentState.WAITING if comp in held else ComponentState.ABSENT
            message = "waiting for its dependencies" if comp in held else "no container"
            out[str(comp)] = ComponentStatus(state=state, message=message)
            continue
        last = before.get(str(comp)) or {}
        same = info.running and last.get("containerID") == info.id[:12]
        judged = last.get("state") in (ComponentState.HEALTHY, ComponentState.UNHEALTHY)
        if h is None and same and judged:
            h = Health(last["state"] == ComponentState.HEALTHY, str(last.get("message", "")))
        state, message = _state(info.status, h, comp in held)
        out[str(comp)] = ComponentStatus(
            state=state,
            image=info.image,
            container_id=info.id,
            container_name=info.name,
            restart_count=info.restart_count,
            health=info.health,
            message=message,
            started_at=info.started_at,
        )
    return out


def _state(status: str, h: Health | None, held: bool) -> tuple[ComponentState, str]:
    if status in ("exited", "dead"):
        return ComponentState.STOPPED, f"container {status}"
    if status == "created":
        return (ComponentState.WAITING if held else ComponentState.CREATED), "created, not started"
    if h is None:
        return ComponentState.RUNNING, "running, health not checked"
    if h.ok:
        return ComponentState.HEALTHY, h.message
    return ComponentState.UNHEALTHY, h.message


def ready_verdicts(preflight_note: str) -> list[Verdict]:
    return [
        Verdict(ConditionType.READY, True, Reason.ALL_HEALTHY, "all 4 components healthy"),
        Verdict(ConditionType.PROGRESSING, False, Reason.RECONCILED, "stack matches the spec"),
        Verdict(ConditionType.DEGRADED, False, Reason.NOT_DEGRADED, "no component degraded"),
        Verdict(ConditionType.PREFLIGHT_PASSED, True, Reason.PREFLIGHT_OK, preflight_note),
    ]


def degraded_verdicts(reason: str, message: str, preflight_note: str) -> list[Verdict]:
    """Running but something is unhealthy or could not be changed; retrying."""
    return [
        Verdict(ConditionType.READY, False, reason, message),
        Verdict(ConditionType.PROGRESSING, True, reason, f"retrying: {message}"),
        Verdict(ConditionType.DEGRADED, True, reason, message),
        Verdict(ConditionType.PREFLIGHT_PASSED, True, Reason.PREFLIGHT_OK, preflight_note),
    ]


def preflight_verdicts(reason: str, message: str) -> list[Verdict]:
    return [
        Verdict(
            ConditionType.READY,
            False,
            Reason.INVALID_SPEC if reason == Reason.INVALID_SPEC else "PreflightFailed",
            message,
        ),
        Verdict(ConditionType.PROGRESSING, False, reason, "waiting for the preflight to pass"),
        Verdict(ConditionType.DEGRADED, True, reason, message),
        Verdict(ConditionType.PREFLIGHT_PASSED, False, reason, message),
    ]


def progressing_verdicts(
    old: Iterable[Mapping[str, Any]], reason: str, message: str
) -> list[Verdict]:
    """Work in progress: Progressing says what; Ready and Degraded keep the last verdict
    (a retry must not hide why the previous attempt failed). A first start is not Ready."""
    kept = {v.type: v for v in _kept(old)}
    ready = kept.get(ConditionType.READY) or Verdict(ConditionType.READY, False, reason, message)
    degraded = kept.get(ConditionType.DEGRADED) or Verdict(
        ConditionType.DEGRADED, False, Reason.NOT_DEGRADED, "no component degraded"
    )
    return [
        ready,
        Verdict(ConditionType.PROGRESSING, True, reason, message),
        degraded,
        Verdict(ConditionType.PREFLIGHT_PASSED, True, Reason.PREFLIGHT_OK, "preflight passed"),
    ]


def _kept(old: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    keep = []
    for c in old:
        if c.get("type") in (ConditionType.READY, ConditionType.DEGRADED):
            status = c.get("status")
            ok = None if status == "Unknown" else status == "True"
            keep.append(
                Verdict(ConditionType(c["type"]), ok, c.get("reason", ""), c.get("message", ""))
            )
    return keep


def paused_verdicts(old: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    """Paused: Progressing says so; Ready and Degraded keep their last value."""
    keep = []
    for c in old:
        if c.get("type") in (
            ConditionType.READY,
            ConditionType.DEGRADED,
            ConditionType.PREFLIGHT_PASSED,
        ):
            status = c.get("status")
            ok = None if status == "Unknown" else status == "True"
            keep.append(
                Verdict(ConditionType(c["type"]), ok, c.get("reason", ""), c.get("message", ""))
            )
    msg = "spec.paused is true: the operator does not change this stack"
    return [*keep, Verdict(ConditionType.PROGRESSING, False, Reason.PAUSED, msg)]


def hibernated_verdicts(note: str) -> list[Verdict]:
    """Hibernated: not Ready on purpose, nothing in progress, nothing degraded."""
    msg = f"spec.hibernated is true: {note}"
    return [
        Verdict(ConditionType.READY, False, Reason.HIBERNATED, msg),
        Verdict(ConditionType.PROGRESSING, False, Reason.HIBERNATED, msg),
        Verdict(ConditionType.DEGRADED, False, Reason.HIBERNATED, "hibernated on request"),
    ]


def phase_for(verdicts: Iterable[Verdict], comps: Mapping[str, ComponentStatus]) -> Phase:
    by_type = {v.type: v for v in verdicts}
    if by_type[ConditionType.READY].reason == Reason.HIBERNATED:
        return Phase.HIBERNATED
    if (
        by_type.get(ConditionType.PROGRESSING)
        and by_type[ConditionType.PROGRESSING].reason == Reason.PAUSED
    ):
        return Phase.PAUSED
    if by_type[ConditionType.READY].ok:
        return Phase.READY
    if (
        by_type.get(ConditionType.PREFLIGHT_PASSED)
        and by_type[ConditionType.PREFLIGHT_PASSED].ok is False
    ):
        running = any(
            c.state in (ComponentState.HEALTHY, ComponentState.RUNNING) for c in comps.values()
        )
        return Phase.DEGRADED if running else Phase.PENDING
    if by_type[ConditionType.DEGRADED].ok:
        return Phase.DEGRADED
    return Phase.PROGRESSING


def masking_phase(phase: str, conditions: Iterable[Mapping[str, Any]]) -> str:
    """Ready only while masking is not known to fail: a stack whose canary saw an identifier
    leak (MaskingVerified False) is Degraded even though every component is healthy; it is
    Ready again once the canary passes and the Ready condition still holds."""
    by_type = {str(c.get("type")): c for c in conditions}
    masking = by_type.get(str(ConditionType.MASKING_VERIFIED)) or {}
    ready = (by_type.get(str(ConditionType.READY)) or {}).get("status") == "True"
    if phase == Phase.READY and masking.get("status") == "False":
        return str(Phase.DEGRADED)
    if phase == Phase.DEGRADED and ready and masking.get("status") != "False":
        return str(Phase.READY)
    return phase


def build(
    *,
    old_status: Mapping[str, Any],
    verdicts: list[Verdict],
    comps: dict[str, ComponentStatus],
    generation: int,
    endpoints: Mapping[str, str],
    docker_version: str = "",
) -> StackStatus:
    """The status object to write, conditions merged with the previous ones."""
    at = now()
    conditions = merge_conditions(old_status.get("conditions") or [], verdicts, generation, at)
    phase = phase_for(verdicts, comps)
    if phase is Phase.READY:
        phase = Phase(masking_phase(phase, [c.to_dict() for c in conditions]))
    return StackStatus(
        phase=phase,
        observed_generation=generation,
        conditions=conditions,
        components=comps,
        endpoints=dict(endpoints),
        docker_version=docker_version or str(old_status.get("dockerVersion", "")),
        restarted_at=old_status.get("restartedAt"),
        last_reconcile=at,
    )


def keep_generation(status: StackStatus, old_status: Mapping[str, Any]) -> None:
    """For a progress report: only Progressing speaks for the new generation. Ready and
    Degraded (and status.observedGeneration) keep the generation they were judged for, so
    `observedGeneration == generation and Ready` means "this spec is Ready"."""
    old_conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
    status.observed_generation = int(old_status.get("observedGeneration", 0) or 0)
    for i, c in enumerate(status.conditions):
        if c.type == ConditionType.PROGRESSING:
            continue
        before = old_conditions.get(c.type) or {}
        generation = int(before.get("observedGeneration", 0) or 0)
        status.conditions[i] = dataclasses.replace(c, observed_generation=generation)


def transitions(old_status: Mapping[str, Any], new: StackStatus) -> list[EventNote]:
    """Events for a changed phase and for conditions whose status flipped."""
    notes = []
    old_phase = old_status.get("phase")
    if old_phase != str(new.phase):
        warn = new.phase in (Phase.DEGRADED, Phase.FAILED)
        ready = next((c for c in new.conditions if c.type == ConditionType.READY), None)
        detail = f": {ready.message}" if ready and not warn else ""
        if warn:
            bad = next(
                (
                    c
                    for c in new.conditions
                    if c.status == "False" and c.type != ConditionType.PROGRESSING
                ),
                None,
            )
            detail = f": {bad.message}" if bad else ""
        notes.append(
            EventNote(
                f"Phase{new.phase}", f"phase {old_phase or 'none'} -> {new.phase}{detail}", warn
            )
        )
    before = {c.get("type"): c.get("status") for c in old_status.get("conditions") or []}
    for c in new.conditions:
        if (
            c.type == ConditionType.PREFLIGHT_PASSED
            and before.get(c.type) != c.status
            and c.status == "False"
        ):
            notes.append(EventNote(c.reason, c.message, warning=True))
    return notes
