"""The issue-5 metric catalogue in kongmasker.metrics: every family exists, is exposed, and
follows the naming rules (prefix, base units, suffixes, bounded labels)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.support import REPO_ROOT

from kongmasker import metrics

pytestmark = pytest.mark.unit

# family name (as exposed, counters without _total) -> type, grouped like issue 5 item 5.
EXPECTED = {
    # availability
    "kongmasker_component_up": "gauge",
    "kongmasker_stack_uptime_ratio": "gauge",
    "kongmasker_health_checks": "counter",
    "kongmasker_health_check_failures": "counter",
    "kongmasker_health_check_success_ratio": "gauge",
    "kongmasker_health_check_duration_seconds": "histogram",
    # performance
    "kongmasker_canary_request_duration_seconds": "histogram",
    "kongmasker_canary_requests": "counter",
    "kongmasker_canary_request_errors": "counter",
    "kongmasker_proxy_requests": "counter",
    "kongmasker_proxy_request_errors": "counter",
    # resources
    "kongmasker_container_cpu_usage_ratio": "gauge",
    "kongmasker_container_memory_usage_bytes": "gauge",
    "kongmasker_container_memory_limit_bytes": "gauge",
    "kongmasker_container_block_read_bytes": "counter",
    "kongmasker_container_block_write_bytes": "counter",
    "kongmasker_container_network_receive_bytes": "counter",
    "kongmasker_container_network_transmit_bytes": "counter",
    "kongmasker_docker_host_free_disk_bytes": "gauge",
    # masking
    "kongmasker_masking_verified": "gauge",
    "kongmasker_masking_success_ratio": "gauge",
    "kongmasker_masking_accuracy_ratio": "gauge",
    "kongmasker_masking_checks": "counter",
    "kongmasker_masking_check_failures": "counter",
    "kongmasker_masking_processing_seconds": "gauge",
    # security
    "kongmasker_auth_failures": "counter",
    "kongmasker_masked_bytes": "counter",
    "kongmasker_masked_identifiers": "counter",
    "kongmasker_security_incidents": "counter",
    # recovery
    "kongmasker_recovery_actions": "counter",
    "kongmasker_restart_budget_exhausted": "gauge",
}
UNITLESS_GAUGES = {"up", "verified", "exhausted"}
FORBIDDEN_UNITS = re.compile(
    r"_(milliseconds|ms|microseconds|minutes|hours|percent|percentage|kb|mb|gb|kib|mib|bits)"
    r"(_|$)"
)


def _family_name(metric: object) -> str:
    return str(metric._name)  # type: ignore[attr-defined]


def test_every_issue5_family_exists_with_its_type() -> None:
    found = {_family_name(m): m._type for m in metrics.OBSERVABILITY_FAMILIES}  # type: ignore[attr-defined]
    assert found == EXPECTED


@pytest.mark.parametrize("family", metrics.OBSERVABILITY_FAMILIES, ids=_family_name)
def test_naming_rules(family: object) -> None:
    name = _family_name(family)
    kind = family._type  # type: ignore[attr-defined]
    labels = set(family._labelnames)  # type: ignore[attr-defined]
    assert name.startswith("kongmasker_")
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert not FORBIDDEN_UNITS.search(name), "use base units: seconds, bytes, ratios"
    assert labels <= metrics.OBS_LABELS, f"high-cardinality or unknown labels: {labels}"
    assert {"namespace", "name"} <= labels
    if kind == "histogram":
        assert name.endswith(("_seconds", "_bytes"))
    if kind == "gauge":
        assert name.endswith(("_seconds", "_bytes", "_ratio")) or (
            name.rsplit("_", 1)[-1] in UNITLESS_GAUGES
        )
    if kind == "counter":
        assert not name.endswith("_total"), "prometheus_client adds _total itself"
    assert family._documentation  # type: ignore[attr-defined]


def test_families_are_exposed_on_the_operator_registry_with_total_suffix() -> None:
    metrics.COMPONENT_UP.labels("ns-expose", "s", "kong").set(1)
    metrics.SECURITY_INCIDENTS.labels("ns-expose", "s", "FailSecureRefusal").inc()
    metrics.CANARY_REQUEST_SECONDS.labels("ns-expose", "s").observe(0.05)
    text = generate_latest(REGISTRY).decode()
    exposed = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name, kind in EXPECTED.items():
        assert exposed.get(name) == kind, name
    assert 'kongmasker_security_incidents_total{name="s",namespace="ns-expose"' in text
    assert 'kongmasker_component_up{component="kong",name="s",namespace="ns-expose"} 1.0' in text
    metrics.forget_observability("ns-expose", "s")


def test_forget_drops_only_that_stacks_series() -> None:
    metrics.COMPONENT_UP.labels("ns-a", "one", "redis").set(1)
    metrics.COMPONENT_UP.labels("ns-a", "two", "redis").set(1)
    metrics.MASKING_ACCURACY_RATIO.labels("ns-a", "one", "EC2").set(1)
    metrics.forget_observability("ns-a", "one")
    text = generate_latest(REGISTRY).decode()
    assert 'name="one",namespace="ns-a"' not in text
    assert 'name="two",namespace="ns-a"' in text
    metrics.forget_observability("ns-a", "two")


def test_cumulative_mirror_counts_growth_and_survives_source_restarts() -> None:
    registry = CollectorRegistry()
    counter = Counter("kongmasker_test_bytes_total", "t", ["namespace", "name"], registry=registry)
    mirror = metrics.CumulativeMirror()
    labels = ("ns", "s")
    assert mirror.update(counter, labels, 100) == 100  # first sight: all of it
    assert mirror.update(counter, labels, 150) == 50
    assert mirror.update(counter, labels, 150) == 0
    assert mirror.update(counter, labels, 20) == 20  # the source restarted from zero
    assert (
        registry.get_sample_value("kongmasker_test_bytes_total", {"namespace": "ns", "name": "s"})
        == 170
    )
    mirror.forget(labels)
    assert mirror.update(counter, labels, 5) == 5


def test_docs_table_lists_every_family() -> None:
    doc = (REPO_ROOT / "docs" / "observability.md").read_text()
    for family in metrics.OBSERVABILITY_FAMILIES:
        name = _family_name(family) + ("_total" if family._type == "counter" else "")  # type: ignore[attr-defined]
        assert f"| `{name}` | {family._type} |" in doc, name  # type: ignore[attr-defined]
