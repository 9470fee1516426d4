"""The kind suite's fixtures and helpers: one kind cluster for the whole suite (hack/kind.sh
up, reused when it is up), the operator installed from manifests/deploy/overlays/kind with
exactly the shipped RBAC, and helpers that reach the node's own Docker engine (the operator's Docker
host) with `docker exec`. Nothing is faked; the mock upstream stands in for the external AI
API and runs as a container in the node, like the stacks."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.support import REPO_ROOT, wait_until

STATE_DIR = Path(os.environ.get("KONGMASKER_STATE", REPO_ROOT / ".local"))
CACHE_DIR = Path(os.environ.get("KONGMASKER_CACHE", Path.home() / ".cache" / "kongmasker"))
CLUSTER = os.environ.get("KIND_CLUSTER", "kongmasker-kind")
NODE = f"{CLUSTER}-control-plane"
SYSTEM_NS = "kongmasker-system"
SA = f"system:serviceaccount:{SYSTEM_NS}:kongmasker-operator"
OPERATOR = "deploy/kongmasker-operator"
POD_SELECTOR = "app.kubernetes.io/name=kongmasker-operator"


@dataclass
class Kind:
    """The kind cluster: kubectl with its kubeconfig, and the node's Docker engine."""

    kubeconfig: str
    # Operator logs saved before every pod replacement, so the whole suite's log is checked.
    saved_logs: list[str] = field(default_factory=list)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 330
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(CACHE_DIR / "bin" / "kubectl"), "--kubeconfig", self.kubeconfig, *args],
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out

    def node(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """A command in the node container (its network is the stacks' 127.0.0.1)."""
        out = subprocess.run(
            ["docker", "exec", "-i", NODE, *args],
            input=input,
            text=True,
            capture_output=True,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} in {NODE}: {out.stderr}")
        return out.stdout

    def docker(self, *args: str, check: bool = True) -> str:
        """The Docker engine inside the node: the one the operator drives."""
        return self.node("docker", *args, check=check)

    def containers(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The stack's containers (by label, never by spelled name), with their labels."""
        ids = self.docker(
            "ps",
            "-aq",
            "--filter",
            f"label=kongmasker.io/stack-namespace={namespace}",
            "--filter",
            f"label=kongmasker.io/stack-name={name}",
        ).split()
        if not ids:
            return []
        return list(json.loads(self.docker("inspect", *ids)))

    def component(self, namespace: str, name: str, comp: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.containers(namespace, name)
            if c["Config"]["Labels"].get("kongmasker.io/component") == comp
        ]

    def http(self, method: str, url: str, body: Any = None) -> tuple[int, str]:
        """curl inside the node; returns (status, body)."""
        args = ["curl", "-sS", "-m", "30", "-X", method, "-w", "\n%{http_code}", url]
        data = None
        if body is not None:
            args += ["-H", "content-type: application/json", "--data-binary", "@-"]
            data = json.dumps(body)
        out = self.node(*args, input=data)
        text, _, code = out.rpartition("\n")
        return int(code), text

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return dict(
            json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)
        )

    def status(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return dict(self.get(kind, name, namespace).get("status") or {})

    def condition(self, name: str, namespace: str, ctype: str) -> dict[str, Any]:
        conds = self.status("kongmaskerstack", name, namespace).get("conditions") or []
        return next((c for c in conds if c["type"] == ctype), {})

    def wait_ready(self, name: str, namespace: str, timeout: int = 240) -> dict[str, Any]:
        done = self.kubectl(
            "wait",
            "--for=condition=Ready",
            f"--timeout={timeout}s",
            f"kongmaskerstack/{name}",
            "-n",
            namespace,
            check=False,
        )
        if done.returncode != 0:
            status = self.status("kongmaskerstack", name, namespace)
            pytest.fail(
                f"{name} not Ready: {json.dumps(status, indent=1)}\n{self.operator_log()[-4000:]}"
            )
        return self.status("kongmaskerstack", name, namespace)

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "-o",
            "json",
            "--field-selector",
            f"involvedObject.name={name}",
        )
        return list(json.loads(out.stdout)["items"])

    def operator_pod(self) -> dict[str, Any]:
        pods = json.loads(
            self.kubectl("get", "pods", "-n", SYSTEM_NS, "-l", POD_SELECTOR, "-o", "json").stdout
        )["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(live) == 1, [p["metadata"]["name"] for p in pods]
        return dict(live[0])

    def operator_log(self, previous: bool = False) -> str:
        args = ["logs", "-n", SYSTEM_NS, OPERATOR] + (["--previous"] if previous else [])
        return self.kubectl(*args, check=False).stdout

    def save_operator_log(self) -> None:
        self.saved_logs.append(self.operator_log())

    def wait_operator_available(self, timeout: int = 180) -> None:
        self.kubectl(
            "-n", SYSTEM_NS, "wait", "--for=condition=Available", f"--timeout={timeout}s", OPERATOR
        )
        wait_until(
            lambda: self.operator_pod()["status"].get("containerStatuses", [{}])[0].get("ready"),
            timeout=timeout,
            what="the operator pod ready",
        )


def _hack(*args: str, **env: str) -> None:
    subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / args[0]), *args[1:]],
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="session")
def kind() -> Iterator[Kind]:
    """The kind cluster of hack/kind.sh (made here if it is not up), operator installed."""
    _hack("kind.sh", "up", KIND_SAMPLE="0")
    k = Kind(str(STATE_DIR / "kind" / "kubeconfig"))
    k.wait_operator_available()
    yield k


@pytest.fixture(scope="session")
def mock_upstream(kind: Kind) -> str:
    """The mock AI API as a container in the node, on the sample stack's upstream port."""
    url = "http://127.0.0.1:18090"
    wait_until(
        lambda: kind.http("GET", f"{url}/health")[0] == 200,
        timeout=60,
        what="the mock upstream in the node",
    )
    return url


@pytest.fixture(scope="session")
def demo(kind: Kind, mock_upstream: str) -> dict[str, Any]:
    """The sample stack (manifests/samples/stack.yaml) as users apply it, Ready. The cluster
    outlives a run (warm runs reuse it): the previous run's backups are removed first."""
    kind.kubectl("delete", "stackbackups", "--all", "-n", "default", "--timeout=180s")
    kind.kubectl("apply", "-f", str(REPO_ROOT / "manifests/samples/stack.yaml"))
    return kind.wait_ready("demo", "default")
