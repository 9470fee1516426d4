"""spec.monitoring: parsed with errors that name the field and the fix, and merged over the
operator's settings into the tuning the stack's watch uses."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.operator.operator_fakes import SPEC

from kongmasker.api.spec import MonitoringSpec, StackSpec
from kongmasker.config import MonitorSettings
from kongmasker.core.monitor import Tuning
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit


def parse(monitoring: Any) -> MonitoringSpec:
    return StackSpec.from_dict({**SPEC, "monitoring": monitoring}).monitoring


def test_unset_fields_take_the_operators_settings() -> None:
    settings = MonitorSettings(interval=10, restart_budget=5, canary_interval=60)
    tuning = Tuning.of(settings, 3.0, parse(None))
    assert (tuning.period, tuning.probe_timeout, tuning.canary_period) == (10, 3.0, 60)
    assert tuning.policy.budget == 5 and tuning.policy.failure_threshold == 3


def test_the_stacks_own_settings_win() -> None:
    spec = parse(
        {
            "probes": {"periodSeconds": 2, "timeoutSeconds": 0.5, "failureThreshold": 2},
            "recovery": {"restartBudget": 9, "budgetWindowSeconds": 60, "backoffSeconds": 1},
            "canary": {"periodSeconds": 0},
        }
    )
    tuning = Tuning.of(MonitorSettings(backoff_max=300), 3.0, spec)
    assert (tuning.period, tuning.probe_timeout, tuning.canary_period) == (2, 0.5, 0)
    p = tuning.policy
    assert (p.failure_threshold, p.budget, p.window, p.backoff_initial) == (2, 9, 60, 1)
    assert p.backoff_max == 300


@pytest.mark.parametrize(
    ("monitoring", "field", "fix"),
    [
        ({"probes": {"periodSeconds": 0}}, "spec.monitoring.probes.periodSeconds", "1 to 3600"),
        ({"probes": {"failureThreshold": 1.5}}, "probes.failureThreshold", "whole number"),
        ({"recovery": {"restartBudget": "5"}}, "recovery.restartBudget", "whole number"),
        ({"probes": {"timeoutSeconds": True}}, "probes.timeoutSeconds", "number of seconds"),
        (
            {"recovery": {"backoffSeconds": 10, "maxBackoffSeconds": 5}},
            "maxBackoffSeconds is below backoffSeconds",
            "raise it",
        ),
        ({"probes": 5}, "spec.monitoring.probes must be an object", ""),
        ("fast", "spec.monitoring must be an object", "periodSeconds"),
    ],
)
def test_bad_values_name_the_field_and_the_fix(monitoring: Any, field: str, fix: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse(monitoring)
    assert field in err.value.message and fix in err.value.message
