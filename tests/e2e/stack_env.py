"""Support for the KongMaskerStack e2e tests: a fresh namespace, the operator as a
subprocess scoped to it, a real mock upstream container, and helpers to apply stacks and
inspect both the API objects and the real containers.

Nothing is mocked: the API server, dockerd, the images and the operator are the real ones.
The mock upstream stands in for the external AI API, which cannot be reached from here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support import REPO_ROOT, free_port, free_ports, wait_until

from kongmasker.api import naming

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
PART_OF = {"app.kubernetes.io/part-of": "kongmasker"}
REDIS_PASSWORD = "e2e-stack-redis-pw"
UPSTREAM_KEY = "e2e-upstream-key"
COMPONENTS = ("redis", "kong", "nginx", "backend")


@dataclass
class Operator:
    """`python -m kongmasker --namespace NS` as a child process, logging to a file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in lines[-n:] if "httpx" not in line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_operator(namespace: str | list[str], log: Path, **env: str) -> Operator:
    """The operator watching `namespace` (or each of a list of them), logging to `log`."""
    namespaces = [namespace] if isinstance(namespace, str) else namespace
    scope = [arg for ns in namespaces for arg in ("--namespace", ns)]
    full_env = {
        **os.environ,
        "KONGMASKER_RECONCILE_INTERVAL": "5",
        "KONGMASKER_RECONCILE_IDLE": "1",
        "KONGMASKER_HEALTH_GATE_TIMEOUT": "30",
        "KONGMASKER_STOP_GRACE_SECONDS": "10",
        **env,
    }
    handle = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kongmasker", *scope],
        cwd=REPO_ROOT,
        env=full_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    return Operator(proc, log)


@dataclass
class StackEnv:
    kubectl: Kubectl
    client: docker.DockerClient
    namespace: str
    mock_url: str
    tmp: Path
    operator: Operator | None = None
    ports: dict[str, dict[str, int]] = field(default_factory=dict)

    # -- API objects -----------------------------------------------------------------------
    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        """A stack spec on fresh free ports, with the test's Secrets and the mock upstream."""
        ports = self.ports.setdefault(
            name,
            dict(
                zip(
                    ("redis", "proxy", "admin", "status", "nginx", "backend"),
                    free_ports(6),
                    strict=True,
                )
            ),
        )
        spec: dict[str, Any] = {
            "upstream": {"url": self.mock_url, "apiKeySecretRef": {"name": "upstream"}},
            "redis": {"port": ports["redis"], "passwordSecretRef": {"name": "redis"}},
            "kong": {
                "proxyPort": ports["proxy"],
                "adminPort": ports["admin"],
                "statusPort": ports["status"],
            },
            "nginx": {"port": ports["nginx"]},
            "backend": {"port": ports["backend"]},
            "stopGracePeriodSeconds": 10,
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            else:
                spec[key] = value
        return spec

    def manifest(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "kongmasker.io/v1alpha1",
            "kind": "KongMaskerStack",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def apply(
        self, name: str, spec: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        out = self.kubectl(
            "apply", "-f", "-", input=json.dumps(self.manifest(name, spec)), check=False
        )
        if check and out.returncode != 0:
            pytest.fail(f"kubectl apply {name} failed: {out.stderr}")
        return out

    def secrets(self) -> None:
        for name, key, value in (
            ("redis", "password", REDIS_PASSWORD),
            ("upstream", "api-key", UPSTREAM_KEY),
        ):
            self.kubectl(
                "create",
                "secret",
                "generic",
                name,
                "-n",
                self.namespace,
                f"--from-literal={key}={value}",
            )

    def get(self, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "kongmaskerstack", name, "-n", self.namespace, "-o", "json")
        return dict(json.loads(out.stdout))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def condition(self, name: str, ctype: str) -> dict[str, Any]:
        conds = self.status(name).get("conditions") or []
        return next((c for c in conds if c["type"] == ctype), {})

    def wait_ready(self, name: str, timeout: int = 180) -> dict[str, Any]:
        done = self.kubectl(
            "wait",
            "--for=condition=Ready",
            f"--timeout={timeout}s",
            f"kongmaskerstack/{name}",
            "-n",
            self.namespace,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"{name} not Ready: {json.dumps(self.status(name), indent=1)}\n"
                f"operator log:\n{self.operator.tail() if self.operator else ''}"
            )
        return self.status(name)

    def wait_condition(
        self, name: str, ctype: str, status: str, reason: str | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            c = self.condition(name, ctype)
            ok = c.get("status") == status and (reason is None or c.get("reason") == reason)
            return c if ok else None

        return wait_until(matches, timeout=timeout, what=f"{name} {ctype}={status} {reason or ''}")

    def delete(self, name: str, timeout: int = 180) -> None:
        self.kubectl(
            "delete", "kongmaskerstack", name, "-n", self.namespace, f"--timeout={timeout}s"
        )

    def events_with(
        self, name: str, reason: str, starting: str = "", kind: str | None = None
    ) -> list[dict[str, Any]]:
        """The stack's Events of `reason` whose message starts with `starting` (and of type
        `kind`, Normal or Warning, if given)."""
        return [
            e
            for e in self.events(name)
            if e.get("reason") == reason
            and str(e.get("message", "")).startswith(starting)
            and (kind is None or e.get("type") == kind)
        ]

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "-o",
            "json",
            "--field-selector",
            f"involvedObject.name={name}",
        )
        return list(json.loads(out.stdout)["items"])

    # -- Docker ----------------------------------------------------------------------------
    def containers(self, name: str | None = None) -> list[Any]:
        labels = [f"kongmasker.io/stack-namespace={self.namespace}"]
        if name:
            labels.append(f"kongmasker.io/stack-name={name}")
        return list(self.client.containers.list(all=True, filters={"label": labels}))

    def by_component(self, name: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {c: [] for c in COMPONENTS}
        for c in self.containers(name):
            out[c.labels["kongmasker.io/component"]].append(c)
        return out

    def container_name(self, name: str, component: str) -> str:
        return naming.container_name(self.namespace, name, component)

    def redis_volume(self, name: str) -> str:
        return naming.redis_volume(self.namespace, name)


@pytest.fixture(scope="session")
def stack_crd(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/kongmaskerstacks.kongmasker.io",
    )


@pytest.fixture(scope="session")
def docker_client(docker_host: str, images: dict[str, str]) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@pytest.fixture
def mock_upstream(docker_client: docker.DockerClient) -> Iterator[str]:
    """The mock AI API (kongmasker/mockupstream) on a free port: it stands in for the
    external API that cannot be reached here."""
    port = free_port()
    container = docker_client.containers.run(
        "kongmasker/mockupstream:dev",
        detach=True,
        name=f"km-e2e-mock-{uuid.uuid4().hex[:8]}",
        network_mode="host",
        environment={"MOCK_LISTEN": f"127.0.0.1:{port}"},
        labels={**PART_OF, "kongmasker.io/test": "e2e-stack"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, timeout=60, what="mock")
        yield url
    finally:
        container.remove(force=True)


@pytest.fixture
def stack_env(
    request: pytest.FixtureRequest,
    kubectl: Kubectl,
    stack_crd: None,
    docker_client: docker.DockerClient,
    mock_upstream: str,
    tmp_path: Path,
) -> Iterator[StackEnv]:
    """A fresh namespace with the Secrets, and the operator watching only it."""
    namespace = f"e2e-{request.node.name[5:18].replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    env = StackEnv(kubectl, docker_client, namespace, mock_upstream, tmp_path)
    env.secrets()
    env.operator = start_operator(namespace, tmp_path / "operator.log")
    try:
        yield env
    finally:
        _teardown(env)


def _teardown(env: StackEnv) -> None:
    out = env.kubectl(
        "get", "kongmaskerstacks", "-n", env.namespace, "-o", "name", check=False
    ).stdout.split()
    for obj in out:
        env.kubectl("delete", obj, "-n", env.namespace, "--timeout=120s", check=False)
    assert env.operator is not None
    env.operator.stop()
    # Whatever the operator could not remove (a failing test) is removed here.
    for c in env.containers():
        c.remove(force=True)
    for obj in out:
        env.kubectl(
            "patch",
            obj,
            "-n",
            env.namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":[]}}',
            check=False,
        )
    for v in env.client.volumes.list(
        filters={"label": f"kongmasker.io/stack-namespace={env.namespace}"}
    ):
        v.remove(force=True)
    env.kubectl("delete", "namespace", env.namespace, "--wait=false", check=False)
    print(f"--- operator log ({env.namespace}) ---\n{env.operator.tail(40)}")


def metric_samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample on a Prometheus /metrics page: (name, labels) -> value."""
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric_value(samples: dict[Any, float], metric: str, **labels: str) -> float | None:
    """The first sample of `metric` carrying (at least) `labels`, or None."""
    for (sample, found), value in samples.items():
        if sample == metric and set(labels.items()) <= set(found):
            return value
    return None


def start_times(env: StackEnv, name: str) -> dict[str, str]:
    """Component -> State.StartedAt of its container (RFC 3339, sortable at equal length)."""
    out = {}
    for comp, found in env.by_component(name).items():
        assert len(found) == 1, f"{comp}: {len(found)} containers"
        found[0].reload()
        out[comp] = found[0].attrs["State"]["StartedAt"]
    return out


def epoch_ns(rfc3339: str) -> int:
    """Docker's StartedAt (nanosecond RFC 3339) -> integer nanoseconds, for ordering."""
    base, _, frac = rfc3339.rstrip("Z").partition(".")
    seconds = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return int(seconds) * 10**9 + int((frac + "000000000")[:9])
