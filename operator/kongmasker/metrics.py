"""Every Prometheus metric of the operator, under one prefix (`kongmasker_operator_`)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, start_http_server

PREFIX = "kongmasker_operator_"

RECONCILES = Counter(
    f"{PREFIX}reconciles_total",
    "Reconciles of a stack, by result.",
    ["namespace", "name", "result"],
)
RECONCILE_SECONDS = Histogram(
    f"{PREFIX}reconcile_duration_seconds",
    "Duration of one reconcile of a stack.",
    ["namespace", "name"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
ACTIONS = Counter(
    f"{PREFIX}actions_total",
    "Container actions taken (Create, Recreate, Start, ApplyConfig, Remove).",
    ["namespace", "name", "component", "action"],
)
COMPONENT_HEALTHY = Gauge(
    f"{PREFIX}component_healthy",
    "1 if the component passed its health gate at the last reconcile, else 0.",
    ["namespace", "name", "component"],
)
STACK_READY = Gauge(
    f"{PREFIX}stack_ready", "1 if the stack's Ready condition is True.", ["namespace", "name"]
)


def serve(addr: str) -> None:
    """Expose /metrics on `addr` ("host:port"; empty: not exposed)."""
    if addr:
        host, _, port = addr.rpartition(":")
        start_http_server(int(port), addr=host or "127.0.0.1")


def forget(namespace: str, name: str) -> None:
    """Drop the series of a deleted stack."""
    with contextlib.suppress(KeyError):
        STACK_READY.remove(namespace, name)
    for comp in ("redis", "kong", "nginx", "backend"):
        with contextlib.suppress(KeyError):
            COMPONENT_HEALTHY.remove(namespace, name, comp)


# --- Issue 5: availability, performance, resources, masking, security, recovery ----------
# Names use the bare `kongmasker_` prefix, base units (seconds, bytes, ratios 0..1) and the
# `_total` / `_seconds` / `_bytes` suffixes; labels are limited to namespace, name, component,
# type (an identifier type of the masking engine, ~51 values) and reason (a vocabulary Reason),
# so the cardinality is bounded per stack. docs/observability.md has the full table.

OBS_PREFIX = "kongmasker_"
OBS_LABELS = frozenset({"namespace", "name", "component", "type", "reason"})
_STACK = ["namespace", "name"]
_COMP = ["namespace", "name", "component"]
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30)

# Availability
COMPONENT_UP = Gauge(
    f"{OBS_PREFIX}component_up", "1 if the component's last probe passed, else 0.", _COMP
)
STACK_UPTIME_RATIO = Gauge(
    f"{OBS_PREFIX}stack_uptime_ratio",
    "Fraction (0..1) of probe rounds in the tracking window in which every component was up.",
    _STACK,
)
HEALTH_CHECKS = Counter(
    f"{OBS_PREFIX}health_checks_total", "Health probes run against a component.", _COMP
)
HEALTH_CHECK_FAILURES = Counter(
    f"{OBS_PREFIX}health_check_failures_total",
    "Health probes that failed, by reason.",
    [*_COMP, "reason"],
)
HEALTH_CHECK_SUCCESS_RATIO = Gauge(
    f"{OBS_PREFIX}health_check_success_ratio",
    "Fraction (0..1) of the component's recent probes that passed.",
    _COMP,
)
HEALTH_CHECK_SECONDS = Histogram(
    f"{OBS_PREFIX}health_check_duration_seconds",
    "Duration of one health probe of a component.",
    _COMP,
    buckets=_LATENCY,
)

# Performance (the canary's own requests, and the components' own counters)
CANARY_REQUEST_SECONDS = Histogram(
    f"{OBS_PREFIX}canary_request_duration_seconds",
    "End-to-end latency of the masking canary's request through Nginx -> Kong -> upstream.",
    _STACK,
    buckets=_LATENCY,
)
CANARY_REQUESTS = Counter(
    f"{OBS_PREFIX}canary_requests_total", "Masking canary requests sent.", _STACK
)
CANARY_REQUEST_ERRORS = Counter(
    f"{OBS_PREFIX}canary_request_errors_total",
    "Masking canary runs that failed, by reason (a MaskingVerified reason).",
    [*_STACK, "reason"],
)
PROXY_REQUESTS = Counter(
    f"{OBS_PREFIX}proxy_requests_total",
    "Requests served by a component, mirrored from its own counters (throughput via rate()).",
    _COMP,
)
PROXY_REQUEST_ERRORS = Counter(
    f"{OBS_PREFIX}proxy_request_errors_total",
    "Requests a component answered with a 5xx status, mirrored from its own counters.",
    _COMP,
)

# Resources
CONTAINER_CPU_RATIO = Gauge(
    f"{OBS_PREFIX}container_cpu_usage_ratio",
    "CPU used by the container as a fraction of what it may use (its limit, else the host).",
    _COMP,
)
CONTAINER_MEMORY_BYTES = Gauge(
    f"{OBS_PREFIX}container_memory_usage_bytes",
    "Working-set memory of the container (usage minus reclaimable file cache).",
    _COMP,
)
CONTAINER_MEMORY_LIMIT_BYTES = Gauge(
    f"{OBS_PREFIX}container_memory_limit_bytes",
    "Memory limit of the container (the host's memory when it has none).",
    _COMP,
)
CONTAINER_BLOCK_READ_BYTES = Counter(
    f"{OBS_PREFIX}container_block_read_bytes_total", "Bytes the container read from disk.", _COMP
)
CONTAINER_BLOCK_WRITE_BYTES = Counter(
    f"{OBS_PREFIX}container_block_write_bytes_total", "Bytes the container wrote to disk.", _COMP
)
CONTAINER_NETWORK_RECEIVE_BYTES = Counter(
    f"{OBS_PREFIX}container_network_receive_bytes_total",
    "Bytes received on the container's own interfaces (not measurable with host networking).",
    _COMP,
)
CONTAINER_NETWORK_TRANSMIT_BYTES = Counter(
    f"{OBS_PREFIX}container_network_transmit_bytes_total",
    "Bytes sent on the container's own interfaces (not measurable with host networking).",
    _COMP,
)
DOCKER_FREE_DISK_BYTES = Gauge(
    f"{OBS_PREFIX}docker_host_free_disk_bytes",
    "Free space of the Docker data root of the stack's host.",
    _STACK,
)

# Masking (from the canary)
MASKING_VERIFIED = Gauge(
    f"{OBS_PREFIX}masking_verified",
    "1 if the last masking canary passed (the MaskingVerified condition), else 0.",
    _STACK,
)
MASKING_SUCCESS_RATIO = Gauge(
    f"{OBS_PREFIX}masking_success_ratio",
    "Fraction (0..1) of identifier types the last canary saw masked and restored correctly.",
    _STACK,
)
MASKING_ACCURACY_RATIO = Gauge(
    f"{OBS_PREFIX}masking_accuracy_ratio",
    "Per identifier type: 1 if the last canary masked it as its type and restored it, else 0.",
    [*_STACK, "type"],
)
MASKING_CHECKS = Counter(
    f"{OBS_PREFIX}masking_checks_total", "Identifier checks made by the canary.", [*_STACK, "type"]
)
MASKING_CHECK_FAILURES = Counter(
    f"{OBS_PREFIX}masking_check_failures_total",
    "Identifier checks that failed, by type and reason.",
    [*_STACK, "type", "reason"],
)
MASKING_PROCESSING_SECONDS = Gauge(
    f"{OBS_PREFIX}masking_processing_seconds",
    "Gateway masking time of the last canary request carrying one identifier of the type.",
    [*_STACK, "type"],
)

# Security
AUTH_FAILURES = Counter(
    f"{OBS_PREFIX}auth_failures_total",
    "Failed authentication attempts at a component, mirrored from its own counters.",
    _COMP,
)
MASKED_BYTES = Counter(
    f"{OBS_PREFIX}masked_bytes_total",
    "Request body bytes that went through the gateway's masking, mirrored from the gateway.",
    _STACK,
)
MASKED_IDENTIFIERS = Counter(
    f"{OBS_PREFIX}masked_identifiers_total",
    "Identifiers masked by the gateway, by type, mirrored from the gateway.",
    [*_STACK, "type"],
)
SECURITY_INCIDENTS = Counter(
    f"{OBS_PREFIX}security_incidents_total",
    "Security incidents: fail-secure refusals, unmasked identifiers seen at the upstream.",
    [*_STACK, "reason"],
)

# Recovery
RECOVERY_ACTIONS = Counter(
    f"{OBS_PREFIX}recovery_actions_total",
    "Restarts made by auto-recovery, by component and reason.",
    [*_COMP, "reason"],
)
RESTART_BUDGET_EXHAUSTED = Gauge(
    f"{OBS_PREFIX}restart_budget_exhausted",
    "1 while a component's restart budget is exhausted (the stack is Degraded), else 0.",
    _COMP,
)

OBSERVABILITY_FAMILIES = (
    COMPONENT_UP, STACK_UPTIME_RATIO, HEALTH_CHECKS, HEALTH_CHECK_FAILURES,
    HEALTH_CHECK_SUCCESS_RATIO, HEALTH_CHECK_SECONDS, CANARY_REQUEST_SECONDS, CANARY_REQUESTS,
    CANARY_REQUEST_ERRORS, PROXY_REQUESTS, PROXY_REQUEST_ERRORS, CONTAINER_CPU_RATIO,
    CONTAINER_MEMORY_BYTES, CONTAINER_MEMORY_LIMIT_BYTES, CONTAINER_BLOCK_READ_BYTES,
    CONTAINER_BLOCK_WRITE_BYTES, CONTAINER_NETWORK_RECEIVE_BYTES,
    CONTAINER_NETWORK_TRANSMIT_BYTES, DOCKER_FREE_DISK_BYTES, MASKING_VERIFIED,
    MASKING_SUCCESS_RATIO, MASKING_ACCURACY_RATIO, MASKING_CHECKS, MASKING_CHECK_FAILURES,
    MASKING_PROCESSING_SECONDS, AUTH_FAILURES, MASKED_BYTES, MASKED_IDENTIFIERS,
    SECURITY_INCIDENTS, RECOVERY_ACTIONS, RESTART_BUDGET_EXHAUSTED,
)  # fmt: skip
"""Every issue-5 family, for the naming test, the docs table and `forget_observability`."""


class CumulativeMirror:
    """Feeds a Counter from a cumulative value read elsewhere (Docker's byte counters, a
    component's own request counter): increments by the growth since the last reading; a
    smaller reading means the source restarted, and counts from zero again."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, tuple[str, ...]], float] = {}

    def update(self, counter: Counter, labels: tuple[str, ...], value: float) -> float:
        """Advance `counter.labels(*labels)` to track `value`; returns the increment."""
        key = (id(counter), labels)
        previous = self._last.get(key)
        self._last[key] = value
        # First sight, or a source that restarted (smaller reading): all of `value` is new.
        delta = max(value if previous is None or value < previous else value - previous, 0.0)
        counter.labels(*labels).inc(delta)
        return delta

    def forget(self, labels_prefix: tuple[str, ...]) -> None:
        """Drop the readings of one stack (labels starting with namespace, name)."""
        n = len(labels_prefix)
        for key in [k for k in self._last if k[1][:n] == labels_prefix]:
            del self._last[key]


def forget_observability(namespace: str, name: str) -> None:
    """Drop every issue-5 series of a deleted stack."""
    wanted = {"namespace": namespace, "name": name}
    for family in OBSERVABILITY_FAMILIES:
        if hasattr(family, "remove_by_labels"):  # prometheus-client >= 0.22
            family.remove_by_labels(wanted)
            continue
        for values in list(family._metrics):  # older clients: same thing by hand
            if values[:2] == (namespace, name):
                with contextlib.suppress(KeyError):
                    family.remove(*values)


# -- StackBackup (issue 6): kongmasker_backup_*, by namespace, stack and operation
# (backup, validate, restore). Appended by the backup work; one prefix of its own, as asked.
BACKUP_PREFIX = "kongmasker_backup_"
_BACKUP_LABELS = ["namespace", "stack", "operation"]

BACKUP_ATTEMPTS = Counter(
    f"{BACKUP_PREFIX}attempts_total", "Backups, validations and restores started.", _BACKUP_LABELS
)
BACKUP_SUCCESSES = Counter(
    f"{BACKUP_PREFIX}successes_total",
    "Backups completed, validations passed, restores done.",
    _BACKUP_LABELS,
)
BACKUP_FAILURES = Counter(
    f"{BACKUP_PREFIX}failures_total",
    "Backups failed, validations that found a backup invalid, restores failed or refused.",
    [*_BACKUP_LABELS, "reason"],
)
BACKUP_DURATION = Histogram(
    f"{BACKUP_PREFIX}duration_seconds",
    "Duration of one backup, validation or restore.",
    _BACKUP_LABELS,
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
BACKUP_SIZE = Gauge(
    f"{BACKUP_PREFIX}size_bytes",
    "Size of the stack's latest completed backup.",
    ["namespace", "stack"],
)
BACKUP_LAST_SUCCESS = Gauge(
    f"{BACKUP_PREFIX}last_success_timestamp_seconds",
    "Unix time of the last successful operation.",
    _BACKUP_LABELS,
)
