"""Typed model of `KongMaskerStack.status`; `to_dict()` gives the camelCase object written
to the status subresource. Conditions follow metav1.Condition's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kongmasker.api.vocabulary import ComponentState, Phase


@dataclass(frozen=True)
class Condition:
    """One metav1.Condition: `status` is "True", "False" or "Unknown"."""

    type: str
    status: str
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
            "observedGeneration": self.observed_generation,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Condition:
        return cls(
            type=str(raw.get("type", "")),
            status=str(raw.get("status", "Unknown")),
            reason=str(raw.get("reason", "")),
            message=str(raw.get("message", "")),
            last_transition_time=str(raw.get("lastTransitionTime", "")),
            observed_generation=int(raw.get("observedGeneration", 0) or 0),
        )


@dataclass(frozen=True)
class ComponentStatus:
    """What the operator observed of one component."""

    state: ComponentState
    image: str = ""
    container_id: str = ""
    container_name: str = ""
    restart_count: int = 0
    health: str = ""
    message: str = ""
    started_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "image": self.image,
            "containerID": self.container_id[:12],
            "containerName": self.container_name,
            "restartCount": self.restart_count,
            "health": self.health,
            "message": self.message,
            "startedAt": self.started_at,
        }


@dataclass
class StackStatus:
    """The full status object; built by core.status and written with one patch."""

    phase: Phase
    observed_generation: int
    conditions: list[Condition] = field(default_factory=list)
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    docker_version: str = ""
    restarted_at: str | None = None
    last_reconcile: str = ""

    @property
    def ready_components(self) -> str:
        healthy = sum(1 for c in self.components.values() if c.state == ComponentState.HEALTHY)
        return f"{healthy}/4"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "phase": str(self.phase),
            "observedGeneration": self.observed_generation,
            "conditions": [c.to_dict() for c in self.conditions],
            "components": {k: v.to_dict() for k, v in self.components.items()},
            "readyComponents": self.ready_components,
            "endpoints": dict(self.endpoints),
            "lastReconcileTime": self.last_reconcile,
        }
        if self.docker_version:
            out["dockerVersion"] = self.docker_version
        if self.restarted_at is not None:
            out["restartedAt"] = self.restarted_at
        return out
