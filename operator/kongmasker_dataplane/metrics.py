"""Prometheus metrics of the data-plane services, one prefix per service.

Each service builds its own `CollectorRegistry`, so several gateways can live in one process
(tests) without clashing on the global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "BackendMetrics", "GatewayMetrics", "render"]

GATEWAY_PREFIX = "kongmasker_gateway"
BACKEND_PREFIX = "kongmasker_backend"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """Everything the gateway counts; names documented in docs/dataplane.md."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        p, r = GATEWAY_PREFIX, self.registry
        self.requests = Counter(
            f"{p}_requests_total",
            "Proxied requests by route and status code",
            ["route", "code"],
            registry=r,
        )
        self.masked = Counter(
            f"{p}_masked_identifiers_total",
            "Identifiers masked in request bodies, by type",
            ["type"],
            registry=r,
        )
        self.unmasked = Counter(
            f"{p}_unmasked_identifiers_total", "Masked ids restored in responses", registry=r
        )
        self.unmask_misses = Counter(
            f"{p}_unmask_misses_total",
            "Masked-looking ids in responses with no mapping (expired or foreign)",
            registry=r,
        )
        self.fail_secure = Counter(
            f"{p}_fail_secure_refusals_total",
            "Requests refused with 503 because identifiers were found and Redis was unreachable",
            registry=r,
        )
        self.masking_errors = Counter(
            f"{p}_masking_errors_total",
            "Store errors while masking or unmasking, by phase",
            ["phase"],
            registry=r,
        )
        self.masking_seconds = Histogram(
            f"{p}_masking_seconds",
            "Time to detect and mask a request body (incl. Redis)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.detect_seconds = Histogram(
            f"{p}_detection_seconds",
            "Time of the pure detection pass over a request body",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            f"{p}_upstream_latency_seconds",
            "Time to the upstream's response headers",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.request_bytes = Counter(
            f"{p}_masked_bytes_total", "Request body bytes that went through masking", registry=r
        )
        self.config_loads = Counter(
            f"{p}_config_loads_total", "Declarative config loads by result", ["result"], registry=r
        )
        self.connections = Gauge(f"{p}_connections_active", "Proxy requests in flight", registry=r)
        self.ready = Gauge(
            f"{p}_ready", "1 when a valid config is loaded and not draining", registry=r
        )


class BackendMetrics:
    """The backend's counters, including failed authentication attempts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        p, r = BACKEND_PREFIX, self.registry
        self.requests = Counter(
            f"{p}_requests_total", "Requests by path and status code", ["path", "code"], registry=r
        )
        self.auth_failures = Counter(
            f"{p}_auth_failures_total",
            "Requests rejected for a missing or wrong X-API-Key",
            registry=r,
        )
        self.analyze_seconds = Histogram(
            f"{p}_analyze_seconds",
            "End-to-end time of POST /analyze",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            f"{p}_upstream_errors_total", "AI calls through the gateway that failed", registry=r
        )


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of a registry."""
    return generate_latest(registry)
