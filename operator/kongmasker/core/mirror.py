"""Mirrors the components' own counters into the operator's `kongmasker_*` metrics, so one
scrape of the operator gives throughput, error rate and the security counters of every stack
(the components bind 127.0.0.1 and are not scraped by Prometheus themselves).

Sources (docs/dataplane.md): the gateway's `/metrics` on Kong's status listener and the
backend's `/metrics`. Counters are cumulative in the components and restart from zero with
them; `CumulativeMirror` turns readings into increments, so a component restart is a counter
reset, not a negative rate.

Operator metric (kongmasker_...) <- component metric (kongmasker_gateway_... / _backend_...):
- proxy_requests_total{component} <- gateway_requests_total, backend_requests_total
- proxy_request_errors_total{component} <- the same, samples with a 5xx `code` label
- masked_bytes_total <- gateway_masked_bytes_total
- masked_identifiers_total{type} <- gateway_masked_identifiers_total{type}
- security_incidents_total{reason="FailSecureRefusal"} <- gateway_fail_secure_refusals_total
- auth_failures_total{component="backend"} <- backend_auth_failures_total
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from kongmasker import metrics
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component, Reason

__all__ = ["MirrorResult", "Sample", "mirror_stack", "parse"]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class MirrorResult:
    """What one mirroring pass read, and what it could not."""

    read: dict[str, int] = field(default_factory=dict)
    """component -> number of samples read."""
    errors: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition."""
    return [
        Sample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _total(samples: Iterable[Sample], name: str, **match: str) -> float | None:
    values = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    ]
    return sum(values) if values else None


def _errors(samples: Iterable[Sample], name: str) -> float | None:
    values = [s.value for s in samples if s.name == name]
    if not values:
        return None
    return sum(s.value for s in samples if s.name == name and s.labels.get("code", "")[:1] == "5")


def mirror_stack(
    spec: StackSpec,
    namespace: str,
    name: str,
    mirror: metrics.CumulativeMirror,
    *,
    client: httpx.Client | None = None,
    timeout: float = 3.0,
    skip: Iterable[Component] = (),
) -> MirrorResult:
    """Read the gateway's and backend's /metrics and advance the operator's counters.

    `skip` names components known to be down right now (a hung one would only cost a
    timeout); their counters simply advance at the next pass."""
    host = spec.docker_host.address
    sources = {
        Component.KONG: f"http://{host}:{spec.kong.status_port}/metrics",
        Component.BACKEND: f"http://{host}:{spec.backend.port}/metrics",
    }
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    result = MirrorResult()
    skipped = set(skip)
    try:
        for comp, url in sources.items():
            if comp in skipped:
                continue
            try:
                resp = http.get(url)
                resp.raise_for_status()
                samples = parse(resp.text)
            except (httpx.HTTPError, ValueError) as exc:
                result.errors[str(comp)] = f"{url}: {type(exc).__name__}"
                continue
            result.read[str(comp)] = len(samples)
            if comp is Component.KONG:
                _gateway(samples, (namespace, name), mirror)
            else:
                _backend(samples, (namespace, name), mirror)
    finally:
        if own:
            http.close()
    return result


def _advance(
    mirror: metrics.CumulativeMirror, counter: Counter, labels: tuple[str, ...], value: float | None
) -> None:
    if value is not None:
        mirror.update(counter, labels, value)


def _gateway(
    samples: list[Sample], stack: tuple[str, str], mirror: metrics.CumulativeMirror
) -> None:
    kong = (*stack, str(Component.KONG))
    _advance(
        mirror, metrics.PROXY_REQUESTS, kong, _total(samples, "kongmasker_gateway_requests_total")
    )
    _advance(
        mirror,
        metrics.PROXY_REQUEST_ERRORS,
        kong,
        _errors(samples, "kongmasker_gateway_requests_total"),
    )
    _advance(
        mirror,
        metrics.MASKED_BYTES,
        stack,
        _total(samples, "kongmasker_gateway_masked_bytes_total"),
    )
    _advance(
        mirror,
        metrics.SECURITY_INCIDENTS,
        (*stack, str(Reason.FAIL_SECURE_REFUSAL)),
        _total(samples, "kongmasker_gateway_fail_secure_refusals_total"),
    )
    for s in samples:
        if s.name == "kongmasker_gateway_masked_identifiers_total" and "type" in s.labels:
            mirror.update(metrics.MASKED_IDENTIFIERS, (*stack, s.labels["type"]), s.value)


def _backend(
    samples: list[Sample], stack: tuple[str, str], mirror: metrics.CumulativeMirror
) -> None:
    backend = (*stack, str(Component.BACKEND))
    name = "kongmasker_backend_requests_total"
    _advance(mirror, metrics.PROXY_REQUESTS, backend, _total(samples, name))
    _advance(mirror, metrics.PROXY_REQUEST_ERRORS, backend, _errors(samples, name))
    _advance(
        mirror,
        metrics.AUTH_FAILURES,
        backend,
        _total(samples, "kongmasker_backend_auth_failures_total"),
    )
