"""The GitHub workflow users run (.github/workflows/e2e-kind.yml) cannot be run here (no
GitHub runner, no registry): what can be checked offline is that it parses, that every make
target it calls exists in the Makefile, and that its public node image is the Kubernetes
version the project pins."""

from __future__ import annotations

import re

import pytest
import yaml
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "e2e-kind.yml"


def _workflow() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load(WORKFLOW.read_text()))


def _make_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.M))


def test_workflow_parses_with_a_job_and_triggers() -> None:
    wf = _workflow()
    # YAML 1.1 reads the key `on` as True.
    assert wf.get(True) or wf.get("on"), "no trigger"
    [job] = wf["jobs"].values()
    assert job["steps"] and job["timeout-minutes"] <= 90


def test_every_make_target_the_workflow_calls_exists() -> None:
    runs = " ".join(s.get("run", "") for j in _workflow()["jobs"].values() for s in j["steps"])
    called = set(re.findall(r"\bmake\s+(?:-s\s+)?([a-z][a-z0-9-]*)", runs))
    assert {"images", "test-kind", "kind-down"} <= called, called
    assert called - _make_targets() == set()


def test_public_node_image_is_the_pinned_kubernetes_version() -> None:
    pin = re.search(
        r'K8S_VERSION="\$\{K8S_VERSION:-(v[0-9.]+)\}"', (REPO_ROOT / "hack/lib.sh").read_text()
    )
    assert pin
    [job] = _workflow()["jobs"].values()
    assert job["env"]["KIND_NODE_IMAGE"] == f"kindest/node:{pin.group(1)}"
