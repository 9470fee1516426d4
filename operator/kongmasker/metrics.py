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


def serve(port: int) -> None:
    """Expose /metrics on 127.0.0.1:`port` (no-op for port 0)."""
    if port:
        start_http_server(port, addr="127.0.0.1")


def forget(namespace: str, name: str) -> None:
    """Drop the series of a deleted stack."""
    with contextlib.suppress(KeyError):
        STACK_READY.remove(namespace, name)
    for comp in ("redis", "kong", "nginx", "backend"):
        with contextlib.suppress(KeyError):
            COMPONENT_HEALTHY.remove(namespace, name, comp)
