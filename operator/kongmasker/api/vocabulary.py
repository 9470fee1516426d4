"""The one vocabulary of the KongMaskerStack API: names, labels, annotations, components,
condition types, reasons and phases. Everything that is shown to users or matched on
containers is spelled here and only here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

GROUP: Final = "kongmasker.io"
VERSION: Final = "v1alpha1"
KIND: Final = "KongMaskerStack"
PLURAL: Final = "kongmaskerstacks"
SHORT_NAME: Final = "kms"

FINALIZER: Final = f"{GROUP}/finalizer"
RESTART_ANNOTATION: Final = f"{GROUP}/restartedAt"
"""Set it to any new value (e.g. a timestamp) to stop and start the whole stack in order."""

# Labels on every container, network and volume the operator creates.
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "kongmasker"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "kongmasker-operator"
LABEL_STACK_UID: Final = f"{GROUP}/stack-uid"
LABEL_STACK_NAME: Final = f"{GROUP}/stack-name"
LABEL_STACK_NAMESPACE: Final = f"{GROUP}/stack-namespace"
LABEL_COMPONENT: Final = f"{GROUP}/component"
LABEL_SPEC_HASH: Final = f"{GROUP}/spec-hash"
"""Hash of everything baked into the container at creation (image, env, ports, limits)."""
LABEL_OPERATOR: Final = f"{GROUP}/operator-id"
"""Identity of the operator instance that made the Docker object (settings.operator.id);
stamped, filtered and enforced by the Docker adapter, so an operator sees and touches only
its own objects on an engine it shares with others."""


class Component(StrEnum):
    """The stack's components, in dependency (start) order."""

    REDIS = "redis"
    KONG = "kong"
    NGINX = "nginx"
    BACKEND = "backend"


START_ORDER: Final = (Component.REDIS, Component.KONG, Component.NGINX, Component.BACKEND)
STOP_ORDER: Final = tuple(reversed(START_ORDER))

DEPENDS_ON: Final = {
    Component.REDIS: (),
    Component.KONG: (Component.REDIS,),
    Component.NGINX: (Component.KONG,),
    Component.BACKEND: (Component.NGINX, Component.KONG, Component.REDIS),
}


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    PREFLIGHT_PASSED = "PreflightPassed"
    MASKING_VERIFIED = "MaskingVerified"
    """The end-to-end masking canary's last verdict (issue 5, core/canary.py)."""


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    PAUSED = "Paused"
    TERMINATING = "Terminating"
    HIBERNATED = "Hibernated"
    """spec.hibernated: stopped in reverse order, Redis saved, containers removed, data kept."""


class ComponentState(StrEnum):
    ABSENT = "Absent"
    CREATED = "Created"
    STARTING = "Starting"
    RUNNING = "Running"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    STOPPED = "Stopped"
    WAITING = "Waiting"
    """Not started because a dependency is not healthy yet."""


class Reason(StrEnum):
    """CamelCase reasons used in conditions and Events."""

    # Ready / Progressing / Degraded
    ALL_HEALTHY = "AllComponentsHealthy"
    STARTING = "Starting"
    UPDATING = "Updating"
    RECONCILED = "Reconciled"
    RESTARTING = "Restarting"
    RESTARTED = "Restarted"
    """A graceful restart finished (every component handed over or restarted in place)."""
    HANDED_OVER = "HandedOver"
    """One component of a graceful restart: the new container serves, the old one is gone."""
    GRACEFUL_RESTART_FAILED = "GracefulRestartFailed"
    """A replacement did not pass its gate: it was removed and the old container kept serving."""
    HEALTH_GATE_FAILED = "HealthGateFailed"
    DRIFT_REPAIRED = "DriftRepaired"
    CONFIG_APPLIED = "ConfigApplied"
    CONFIG_APPLY_FAILED = "ConfigApplyFailed"
    KONG_CONFIG_DRIFT = "KongConfigDrift"
    """Kong's live configuration hash differed from the one it reported for the rendered
    config (changed through the Admin API): the rendered config was applied again."""
    DOCKER_ERROR = "DockerError"
    CONTAINER_CONFLICT = "ContainerConflict"
    PAUSED = "Paused"
    HIBERNATED = "Hibernated"
    """spec.hibernated is true: nothing of the stack runs; its data volume is kept."""
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    NOT_DEGRADED = "AsExpected"
    # PreflightPassed
    PREFLIGHT_OK = "PreflightSucceeded"
    DOCKER_UNREACHABLE = "DockerUnreachable"
    SECRET_MISSING = "SecretMissing"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    SECRET_VALUE_INVALID = "SecretValueInvalid"
    """A Secret value the consumer cannot take: not UTF-8, or a NUL or line break in it."""
    INSUFFICIENT_CPU = "InsufficientCPU"
    """A resources.cpu limit above the CPUs the Docker host has."""
    PORT_IN_USE = "PortInUse"
    DISK_LOW = "InsufficientDisk"
    IMAGE_MISSING = "ImageMissing"
    INVALID_SPEC = "InvalidSpec"
    FOREIGN_VOLUME = "ForeignVolume"
    """spec.redis.persistence.volumeName names a volume not made for this stack."""
    MIGRATED = "Migrated"
    INVALID_CONFIG_VALUE = "InvalidConfigValue"
    """A value that would be written into a configuration file cannot be represented there."""
    """Containers and volume of the previous naming scheme moved to the current names."""
    # MaskingVerified (the masking canary)
    CANARY_PASSED = "CanaryPassed"
    IDENTIFIER_LEAKED = "UnmaskedIdentifierSeen"
    """A raw identifier reached the upstream: a security incident."""
    ORIGINALS_NOT_RESTORED = "OriginalsNotRestored"
    WRONG_TYPE = "MaskedAsWrongType"
    """No longer given: the canary judges any plugin, not how it names masked ids (kept so
    that a status written by an older operator still reads as a known reason)."""
    FAIL_SECURE_REFUSAL = "FailSecureRefusal"
    """The gateway refused the canary with 503 (identifiers found, Redis unreachable)."""
    CANARY_REQUEST_FAILED = "CanaryRequestFailed"
    UPSTREAM_NOT_VERIFIABLE = "UpstreamNotVerifiable"
    """The upstream has no GET /__requests (not the mock): the canary sends nothing."""
    # Recovery (core/recovery.py)
    CONTAINER_EXITED = "ContainerExited"
    PROBES_FAILING = "ProbesFailing"
    DEPENDENCY_RESTARTED = "DependencyRestarted"
    DEPENDENCY_UNHEALTHY = "DependencyUnhealthy"
    RESTART_BACKOFF = "RestartBackoff"
    RESTART_BUDGET_EXHAUSTED = "RestartBudgetExhausted"
    # Alerts (core/alerts.py)
    ALERT_WEBHOOK_UNAVAILABLE = "AlertWebhookUnavailable"
    """spec.alerts.webhook names a Secret or key that is missing or holds no http(s) URL."""
