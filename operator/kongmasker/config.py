"""Operator settings: grouped dataclasses, one docstring per field, overridable from the
environment as ``KONGMASKER_<GROUP>_<FIELD>`` (e.g. ``KONGMASKER_RECONCILE_INTERVAL=15``).

`Settings.from_env()` is called once at start-up and the result is handed down; nothing
else reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReconcileSettings:
    interval: float = 30.0
    """Seconds between periodic (level-based) reconciles of each stack."""

    idle: float = 5.0
    """Seconds a stack must be unchanged before the periodic reconcile runs."""

    event_debounce: float = 1.0
    """Seconds of quiet after a Docker event before the drift reconcile runs."""

    retry_delay: float = 10.0
    """Default delay before a failed reconcile is retried."""


@dataclass(frozen=True)
class HealthSettings:
    gate_timeout: float = 90.0
    """Seconds a component may take to pass its health gate after a start or update."""

    poll_interval: float = 0.2
    """Seconds between two health probes while waiting on a gate."""

    probe_timeout: float = 3.0
    """Timeout of one HTTP or Redis probe."""


@dataclass(frozen=True)
class StopSettings:
    grace_seconds: int = 20
    """Grace period for draining in-flight requests before a container is killed."""

    redis_save_timeout: float = 30.0
    """Seconds to wait for BGSAVE to complete (LASTSAVE advancing) before stopping Redis."""


@dataclass(frozen=True)
class PreflightSettings:
    min_free_disk_mb: int = 512
    """Free space required on the Docker host's data root, in MiB."""


@dataclass(frozen=True)
class DockerSettings:
    default_url: str = ""
    """Engine URL used when a stack does not name one (empty: DOCKER_HOST, then the socket)."""

    timeout: float = 60.0
    """Timeout of one Docker API call, in seconds."""


@dataclass(frozen=True)
class MetricsSettings:
    addr: str = ""
    """host:port of the Prometheus /metrics endpoint (empty disables it), e.g. 127.0.0.1:18080."""


@dataclass(frozen=True)
class MonitorSettings:
    """The health watch of issue 5 (handlers/monitor.py, core/monitor.py)."""

    enabled: bool = True
    """Run the per-stack watch daemon (probes, auto-recovery, canary, resource sampling).
    While its daemons stop, kopf may run the delete handler a second time; the delete is
    idempotent (the second run finds nothing to stop and posts nothing)."""

    interval: float = 10.0
    """Seconds between two probe rounds of a stack."""

    failure_threshold: int = 3
    """Consecutive failed probes after which a running component is restarted."""

    startup_grace: float = 10.0
    """Seconds after a restart during which failed probes are not held against a component."""

    backoff_initial: float = 5.0
    """Seconds before the second restart within the window; doubles for each further one."""

    backoff_max: float = 300.0
    """Longest wait between two restarts of one component."""

    restart_budget: int = 5
    """Restarts allowed per component within `restart_window`; then the stack is Degraded."""

    restart_window: float = 600.0
    """Seconds over which the restart budget is counted."""

    canary_interval: float = 60.0
    """Seconds between two masking canary runs (0 disables the canary)."""

    canary_per_type_timing: bool = True
    """Also send one request per identifier type to measure masking time per type."""

    resources_interval: float = 30.0
    """Seconds between two resource samples of a stack's containers (0 disables sampling)."""

    webhook_url: str = ""
    """Webhook the watch's Warning Events are sent to (empty: none). It usually embeds a token:
    give it to the operator from a Secret (Deployment env valueFrom.secretKeyRef)."""

    webhook_cooldown: float = 900.0
    """Seconds during which a repeat of the same alert (stack, reason, component) is held back."""


@dataclass(frozen=True)
class BackupSettings:
    """Limits the operator's administrator sets on StackBackups (issue 11), in the spirit of
    Velero's BackupStorageLocation: requesters choose within them, never outside."""

    directory_roots: tuple[str, ...] = ("/var/lib/kongmasker/backups",)
    """Absolute directories of the Docker hosts under which `storage.directory.path` may lie
    (comma-separated). A path outside all of them, or with a `..` segment, is refused before
    anything is written (a root helper container writes there)."""

    min_schedule_interval: float = 300.0
    """Shortest interval, in seconds, between two backups of a Schedule's cron; a cron that
    fires more often is refused (spec.schedule.cron)."""


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means cluster-wide."""

    log_level: str = "INFO"
    """Logging level of the operator (DEBUG, INFO, WARNING, ERROR)."""

    liveness_port: int = 0
    """Port of kopf's liveness endpoint on 127.0.0.1 (0 disables it)."""

    id: str = ""
    """Identity stamped on every Docker object this operator makes (label
    kongmasker.io/operator-id); the start-up sweep and every repair touch only objects with
    this identity, so several operators can share one engine. Empty: derived at start-up,
    `kongmasker-operator.<POD_NAMESPACE>` in a cluster (the Deployment's namespace, from the
    downward API), else `kongmasker-operator`. Changing it orphans the stacks made before."""

    max_workers: int = 512
    """Threads for kopf's sync handlers. Each stack holds two for as long as it exists (the
    Docker-event daemon and the health watch), so this bounds the stacks one operator can
    serve at about (max_workers - 32) / 2; threads are only started when needed."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of the operator, grouped."""

    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    stop: StopSettings = field(default_factory=StopSettings)
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    docker: DockerSettings = field(default_factory=DockerSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``KONGMASKER_<GROUP>_<FIELD>`` variables.

        >>> Settings.from_env({"KONGMASKER_RECONCILE_INTERVAL": "5"}).reconcile.interval
        5.0
        """
        env = os.environ if environ is None else environ
        groups: dict[str, Any] = {}
        for group_field in dataclasses.fields(cls):
            default = getattr(cls(), group_field.name)
            groups[group_field.name] = _override(default, group_field.name, env)
        if "LOG_LEVEL" in env and "KONGMASKER_OPERATOR_LOG_LEVEL" not in env:
            # The seed's scripts honour LOG_LEVEL; keep that habit.
            groups["operator"] = dataclasses.replace(groups["operator"], log_level=env["LOG_LEVEL"])
        if not groups["operator"].id:
            groups["operator"] = dataclasses.replace(
                groups["operator"], id=default_operator_id(env)
            )
        return cls(**groups)


DEFAULT_OPERATOR_ID = "kongmasker-operator"


def default_operator_id(env: Mapping[str, str]) -> str:
    """`kongmasker-operator.<namespace>` for a Deployment (POD_NAMESPACE), else the bare name.

    >>> default_operator_id({"POD_NAMESPACE": "kongmasker-system"})
    'kongmasker-operator.kongmasker-system'
    """
    ns = env.get("POD_NAMESPACE", "").strip()
    return f"{DEFAULT_OPERATOR_ID}.{ns}" if ns else DEFAULT_OPERATOR_ID


def _override(group: Any, prefix: str, env: Mapping[str, str]) -> Any:
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(group):
        key = f"KONGMASKER_{prefix}_{f.name}".upper()
        if key in env:
            changes[f.name] = _parse(env[key], getattr(group, f.name), key)
    return dataclasses.replace(group, **changes)


def _parse(raw: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"{key}={raw!r}: expected {type(default).__name__}") from exc
    return raw
