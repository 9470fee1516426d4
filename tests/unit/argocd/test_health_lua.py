"""The Argo CD health script, run by a real Lua 5.1 interpreter (Argo CD embeds gopher-lua,
which implements Lua 5.1), against statuses the operator writes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit
SCRIPT = REPO_ROOT / "manifests" / "argocd" / "health-kongmasker.lua"


def _lua(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    harness = (
        f"obj = {_lua(obj)}\n"
        f"local hs = (function()\n{Path(SCRIPT).read_text()}\nend)()\n"
        'io.write(hs.status, "\\n", hs.message or "")\n'
    )
    out = subprocess.run(
        ["lua5.1", "-"], input=harness, text=True, capture_output=True, check=True
    ).stdout
    status, _, message = out.partition("\n")
    return status, message


def stack(generation: int = 2, observed: int | None = 2, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "KongMaskerStack",
        "metadata": {"generation": generation},
        "spec": {},
        "status": dict(status),
    }
    if observed is not None:
        obj["status"]["observedGeneration"] = observed
    return obj


def cond(type_: str, status: str, reason: str = "R", message: str = "m") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_no_status_is_progressing() -> None:
    assert health({"kind": "KongMaskerStack", "metadata": {"generation": 1}})[0] == "Progressing"


def test_stale_status_is_progressing_even_if_ready() -> None:
    status, message = health(stack(3, 2, conditions=[cond("Ready", "True")]))
    assert status == "Progressing"
    assert "generation 3" in message


def test_ready_is_healthy() -> None:
    assert health(stack(conditions=[cond("Ready", "True", "StackReady")])) == (
        "Healthy",
        "StackReady: m",
    )


def test_degraded_wins_over_ready() -> None:
    status, message = health(
        stack(conditions=[cond("Ready", "True"), cond("Degraded", "True", "RestartBudget", "x")])
    )
    assert (status, message) == ("Degraded", "RestartBudget: x")


def test_not_ready_is_progressing_with_reason() -> None:
    status, message = health(stack(conditions=[cond("Ready", "False", "WaitingForKong", "k")]))
    assert (status, message) == ("Progressing", "WaitingForKong: k")


def test_paused_is_suspended() -> None:
    obj = stack(conditions=[cond("Ready", "True")])
    obj["spec"]["paused"] = True
    assert health(obj)[0] == "Suspended"


def test_hibernated_is_suspended_once_the_operator_says_so() -> None:
    obj = stack(phase="Hibernated", conditions=[cond("Ready", "False", "Hibernated", "h")])
    obj["spec"]["hibernated"] = True
    status, message = health(obj)
    assert status == "Suspended"
    assert "Hibernated" in message


def test_hibernating_is_progressing_until_the_phase_says_hibernated() -> None:
    obj = stack(phase="Ready", conditions=[cond("Ready", "True")])
    obj["spec"]["hibernated"] = True
    assert health(obj) == ("Progressing", "Hibernating: stopping the stack")


def test_woken_stack_is_judged_by_its_conditions_again() -> None:
    obj = stack(phase="Hibernated", conditions=[cond("Ready", "False", "Hibernated", "h")])
    obj["spec"]["hibernated"] = False
    assert health(obj)[0] == "Progressing"


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Completed", "Healthy"),
        ("Validated", "Healthy"),
        ("Failed", "Degraded"),
        ("Invalid", "Degraded"),
        ("InProgress", "Progressing"),
        ("New", "Progressing"),
    ],
)
def test_backup_phases(phase: str, expected: str) -> None:
    obj = stack(phase=phase, failureReason="checksum mismatch")
    obj["kind"] = "StackBackup"
    assert health(obj)[0] == expected


def test_configmap_embeds_the_script_verbatim() -> None:
    cm = yaml.safe_load((SCRIPT.parent / "argocd-cm-health.yaml").read_text())
    script = SCRIPT.read_text()
    for kind in ("KongMaskerStack", "StackBackup"):
        assert cm["data"][f"resource.customizations.health.kongmasker.io_{kind}"] == script
