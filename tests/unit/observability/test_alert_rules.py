"""The alert rules in manifests/monitoring/: the PrometheusRule and the plain rule file agree,
promtool accepts them, the promtool rule unit tests (tests/unit/monitoring/*.yaml) pass, and
every alert is tested and refers only to metrics the operator exposes.

Regenerate rules.yaml from the PrometheusRule with
`KONGMASKER_REGEN=1 .venv/bin/python -m pytest tests/unit/observability/test_alert_rules.py`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT

from kongmasker import metrics

pytestmark = pytest.mark.unit

MONITORING = REPO_ROOT / "manifests" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
RULES = MONITORING / "rules.yaml"
PROMTOOL_TESTS = sorted((REPO_ROOT / "tests" / "unit" / "monitoring").glob("*.yaml"))
HEADER = (
    "# Generated from prometheusrule.yaml (spec.groups) for a plain Prometheus; do not edit.\n"
    "# Regenerate: KONGMASKER_REGEN=1 pytest tests/unit/observability/test_alert_rules.py\n"
)


def promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(path).exists(), "promtool missing: apt-get install prometheus (Debian)"
    return path


def groups() -> list[dict[str, Any]]:
    doc = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    return list(doc["spec"]["groups"])


def alerts() -> list[dict[str, Any]]:
    return [rule for group in groups() for rule in group["rules"] if "alert" in rule]


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks, like the PrometheusRule."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def test_rules_file_is_the_prometheusrule_groups() -> None:
    body = yaml.dump({"groups": groups()}, Dumper=_Dumper, sort_keys=False, width=1000)
    expected = HEADER + body
    if os.environ.get("KONGMASKER_REGEN"):
        RULES.write_text(expected)
    assert RULES.read_text() == expected, "rules.yaml is stale: regenerate it (module docstring)"


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    assert PROMTOOL_TESTS, "no promtool tests in tests/unit/monitoring"
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, PROMTOOL_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_alert_is_covered_by_a_promtool_test() -> None:
    tested: set[str] = set()
    for path in PROMTOOL_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert {a["alert"] for a in alerts()} <= tested


def test_alerts_have_severity_and_text() -> None:
    for alert in alerts():
        assert alert["alert"].startswith("KongMasker")
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]


def test_alerts_only_use_metrics_the_operator_exposes() -> None:
    known = {str(m._name) for m in metrics.OBSERVABILITY_FAMILIES}  # type: ignore[attr-defined]
    for alert in alerts():
        for name in re.findall(r"\bkongmasker_[a-z0-9_]+", alert["expr"]):
            family = re.sub(r"_(total|bucket|sum|count)$", "", name)
            assert family in known, f"{alert['alert']} uses unknown metric {name}"
