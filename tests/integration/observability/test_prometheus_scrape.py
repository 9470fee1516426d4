"""A real Prometheus (Debian's /usr/bin/prometheus, on 127.0.0.1, temp storage) scrapes the
operator's metrics registry and evaluates manifests/monitoring/rules.yaml against it.

Nothing is mocked: the registry is kongmasker.metrics' global one, served over HTTP by
prometheus_client exactly as the operator serves it; the values are set through the catalogue.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY, start_http_server
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker import metrics

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "manifests" / "monitoring" / "rules.yaml"
NS, NAME = "prom-it", "demo"


@pytest.fixture
def operator_metrics() -> Iterator[str]:
    """The operator's registry on a free 127.0.0.1 port; yields host:port."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)
    metrics.forget_observability(NS, NAME)


@pytest.fixture
def prometheus(operator_metrics: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A Prometheus scraping `operator_metrics` every second and evaluating the rules."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "prometheus missing: apt-get install prometheus (Debian)"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "kongmasker-operator", "static_configs": [{"targets": [operator_metrics]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        wait_until(
            lambda: proc.poll() is None and client.get("/-/ready").status_code == 200,
            timeout=60,
            what="prometheus ready",
        )
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _api(client: httpx.Client, path: str) -> Any:
    body = client.get(f"/api/v1/{path}").json()
    assert body["status"] == "success", body
    return body["data"]


def _alerts(client: httpx.Client) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for alert in _api(client, "alerts")["alerts"]:
        out.setdefault(alert["labels"]["alertname"], []).append(alert)
    return out


def _scraped(client: httpx.Client) -> bool:
    targets = _api(client, "targets")["activeTargets"]
    return bool(targets) and all(t["health"] == "up" for t in targets)


def _query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    return list(_api(client, f"query?query={promql}")["result"])


def test_prometheus_scrapes_the_operator_and_fires_the_alerts(
    prometheus: httpx.Client,
) -> None:
    metrics.COMPONENT_UP.labels(NS, NAME, "redis").set(1)
    metrics.COMPONENT_UP.labels(NS, NAME, "kong").set(0)
    metrics.RESTART_BUDGET_EXHAUSTED.labels(NS, NAME, "redis").set(1)
    incidents = metrics.SECURITY_INCIDENTS.labels(NS, NAME, "UnmaskedIdentifierSeen")
    metrics.CANARY_REQUEST_SECONDS.labels(NS, NAME).observe(0.05)

    wait_until(lambda: _scraped(prometheus), timeout=60, what="the operator target is up")
    wait_until(
        lambda: _query(prometheus, f'kongmasker_security_incidents_total{{namespace="{NS}"}}'),
        timeout=30,
        what="the incident counter scraped at 0",
    )
    incidents.inc()  # after a scrape at 0, so increase() sees it

    def firing(alertname: str, **labels: str) -> bool:
        return any(
            a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in _alerts(prometheus).get(alertname, [])
        )

    wait_until(
        lambda: firing("KongMaskerRestartBudgetExhausted", namespace=NS, component="redis"),
        timeout=60,
        what="KongMaskerRestartBudgetExhausted firing",
    )
    wait_until(
        lambda: firing("KongMaskerUnmaskedIdentifierAtUpstream", namespace=NS, name=NAME),
        timeout=60,
        what="KongMaskerUnmaskedIdentifierAtUpstream firing",
    )
    alerts = _alerts(prometheus)
    down = alerts["KongMaskerComponentDown"]  # `for: 1m`: pending while the test runs
    assert [a["labels"]["component"] for a in down] == ["kong"]
    assert down[0]["state"] in ("pending", "firing")
    assert "KongMaskerOperatorDown" not in alerts

    # Every rule loaded and evaluated without error against real scraped data.
    groups = _api(prometheus, "rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    expected = yaml.safe_load(RULES.read_text())["groups"]
    assert len(rules) == sum(len(g["rules"]) for g in expected)
    wait_until(
        lambda: all(
            r["health"] == "ok" for g in _api(prometheus, "rules")["groups"] for r in g["rules"]
        ),
        timeout=30,
        what="every rule evaluated with health ok",
    )
    latency = _query(
        prometheus,
        f'kongmasker_canary_request_duration_seconds_count{{namespace="{NS}",name="{NAME}"}}',
    )
    assert latency and float(latency[0]["value"][1]) >= 1
