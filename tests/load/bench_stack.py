"""Benchmark: time from `kubectl apply` to Ready for one KongMaskerStack, against
(a) the floor: the same four containers started by hand, one after another, each polled
    until healthy (same images, env, config files, health gates, 50 ms polling);
(b) Debian's docker-compose (1.29) with healthcheck-gated `depends_on` on the same images
    (healthcheck interval tuned down to 1 s so compose is not penalised by the images'
    default 5 s);
and the time of a no-op reconcile of a Ready stack (in-process, real API server and dockerd).

Run from the repository root with the local environment up (`make up` or the test fixtures):

    .venv/bin/python tests/load/bench_stack.py --runs 3

It prints one line per measurement and a summary table (median, min, max). Everything it
creates carries app.kubernetes.io/part-of=kongmasker and is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

from tests.support import free_port, wait_until  # noqa: E402

from kongmasker.adapters.docker import DockerRuntime  # noqa: E402
from kongmasker.adapters.probes import NetProbes  # noqa: E402
from kongmasker.api import naming  # noqa: E402
from kongmasker.api.spec import StackSpec  # noqa: E402
from kongmasker.api.vocabulary import START_ORDER  # noqa: E402
from kongmasker.config import Settings  # noqa: E402
from kongmasker.core import health  # noqa: E402
from kongmasker.core import reconcile as core  # noqa: E402
from kongmasker.core.render import StackRef, render_stack  # noqa: E402

STATE = REPO / ".local"
KUBECTL = Path.home() / ".cache/kongmasker/bin/kubectl"
PASSWORD = "bench-redis-pw"
SECRETS = {"REDIS_PASSWORD": PASSWORD, "ANTHROPIC_API_KEY": "bench-key"}
PART_OF = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/bench": "stack"}


def kubectl(*args: str, input: str | None = None) -> str:
    cmd = [str(KUBECTL), "--kubeconfig", str(STATE / "kubeconfig"), *args]
    return subprocess.run(cmd, input=input, text=True, capture_output=True, check=True).stdout


def spec_dict(mock: str) -> dict[str, Any]:
    return {
        "upstream": {"url": mock, "apiKeySecretRef": {"name": "upstream"}},
        "redis": {"port": free_port(), "passwordSecretRef": {"name": "redis"}},
        "kong": {"proxyPort": free_port(), "adminPort": free_port(), "statusPort": free_port()},
        "nginx": {"port": free_port()},
        "backend": {"port": free_port()},
        "stopGracePeriodSeconds": 5,
    }


@contextmanager
def mock_upstream(client: docker.DockerClient) -> Iterator[str]:
    port = free_port()
    c = client.containers.run(
        "kongmasker/mockupstream:dev",
        detach=True,
        network_mode="host",
        environment={"MOCK_LISTEN": f"127.0.0.1:{port}"},
        labels=PART_OF,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, timeout=60, what="mock")
        yield url
    finally:
        c.remove(force=True)


def by_hand(runtime: DockerRuntime, mock: str) -> float:
    """Floor: create+start each container, poll its gate every 50 ms, then the next."""
    spec = StackSpec.from_dict(spec_dict(mock))
    ref = StackRef("bench", f"floor{uuid.uuid4().hex[:6]}", uuid.uuid4().hex)
    desired = render_stack(ref, spec, SECRETS, 5)
    probes = NetProbes(2.0)
    t0 = time.perf_counter()
    try:
        for comp in START_ORDER:
            for volume in desired[comp].container.volumes:
                runtime.ensure_volume(volume, PART_OF)
            info = runtime.create_container(desired[comp].container)
            runtime.start_container(info.id)
            ok = health.wait_healthy(comp, spec, probes, SECRETS, timeout=60, interval=0.05)
            assert ok, f"{comp}: {ok.message}"
        return time.perf_counter() - t0
    finally:
        for c in runtime.list_containers({"kongmasker.io/stack-name": ref.name}):
            runtime.remove_container(c.id, force=True)
        runtime.remove_volume(ref.redis_volume(spec))


def compose(mock: str, workdir: Path) -> float:
    """docker-compose up with depends_on: service_healthy, until Backend is ready."""
    spec = StackSpec.from_dict(spec_dict(mock))
    ref = StackRef("bench", f"compose{uuid.uuid4().hex[:6]}", uuid.uuid4().hex)
    desired = render_stack(ref, spec, SECRETS, 5)
    project = ref.name
    services: dict[str, Any] = {}
    deps = {"redis": None, "kong": "redis", "nginx": "kong", "backend": "nginx"}
    for comp in START_ORDER:
        d = desired[comp]
        comp = str(comp)
        svc: dict[str, Any] = {
            "image": d.container.image,
            "network_mode": "host",
            "environment": dict(d.container.env),
            "labels": PART_OF,
            "stop_signal": d.container.stop_signal,
            "healthcheck": {"interval": "1s", "timeout": "3s", "retries": 30},
        }
        if d.config_path and d.config is not None:
            local = workdir / f"{project}-{comp}.conf"
            local.write_bytes(d.config)
            local.chmod(0o644)
            svc["volumes"] = [f"{local}:{d.config_path}:ro"]
        if comp == "redis":
            svc["volumes"] = [f"{project}-data:/data"]
            svc["healthcheck"]["test"] = [
                "CMD-SHELL",
                f'REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli -p {spec.redis.port} ping'
                " | grep -q PONG",
            ]
        if comp == "nginx":
            svc["healthcheck"]["test"] = [
                "CMD",
                "curl",
                "-fsS",
                f"http://127.0.0.1:{spec.nginx.port}/health/ready",
            ]
        if deps[comp]:
            svc["depends_on"] = {deps[comp]: {"condition": "service_healthy"}}
        services[comp] = svc
    doc = {"version": "2.4", "services": services, "volumes": {f"{project}-data": {}}}
    path = workdir / f"{project}.yml"
    path.write_text(yaml.safe_dump(doc))
    base = ["docker-compose", "-p", project, "-f", str(path)]
    t0 = time.perf_counter()
    try:
        subprocess.run([*base, "up", "-d"], check=True, capture_output=True)
        url = f"http://127.0.0.1:{spec.backend.port}/health/ready"
        wait_until(
            lambda: httpx.get(url).status_code == 200,
            timeout=120,
            what="compose backend",
            interval=0.05,
        )
        return time.perf_counter() - t0
    finally:
        subprocess.run([*base, "down", "-v", "-t", "5"], check=False, capture_output=True)


def operator_apply(namespace: str, mock: str) -> float:
    """kubectl apply -> Ready condition observed (kubectl wait), with the operator running."""
    name = f"s{uuid.uuid4().hex[:6]}"
    manifest = {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "KongMaskerStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec_dict(mock),
    }
    t0 = time.perf_counter()
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    kubectl("wait", "--for=condition=Ready", "--timeout=180s", f"kms/{name}", "-n", namespace)
    elapsed = time.perf_counter() - t0
    kubectl("delete", "kms", name, "-n", namespace, "--timeout=120s")
    return elapsed


def noop_reconciles(namespace: str, mock: str, runs: int) -> list[float]:
    """core.reconcile on a Ready stack (no change to make), in-process with real adapters."""
    from kongmasker.handlers.lifecycle import build_deps

    name = f"n{uuid.uuid4().hex[:6]}"
    manifest = {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "KongMaskerStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec_dict(mock),
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    kubectl("wait", "--for=condition=Ready", "--timeout=180s", f"kms/{name}", "-n", namespace)
    deps = build_deps(Settings.from_env())
    times = []
    try:
        for _ in range(runs):
            fresh = deps.status.get_stack(namespace, name)
            assert fresh is not None
            meta = fresh["metadata"]
            obj = core.StackObject(
                ref=StackRef(namespace, name, meta["uid"]),
                generation=int(meta["generation"]),
                spec=fresh["spec"],
                status=fresh.get("status") or {},
                annotations=meta.get("annotations") or {},
            )
            t0 = time.perf_counter()
            result = core.reconcile(obj, deps)
            times.append(time.perf_counter() - t0)
            assert result.error is None and not result.actions, result
    finally:
        kubectl("delete", "kms", name, "-n", namespace, "--timeout=120s")
    return times


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<44} median {statistics.median(values):7.3f}s  min {min(values):7.3f}s  "
        f"max {max(values):7.3f}s  (n={len(values)})"
    )


def measure(label: str, runs: int, fn: Callable[[], float]) -> list[float]:
    out = []
    for i in range(runs):
        value = fn()
        print(f"  {label} run {i + 1}: {value:.3f}s", flush=True)
        out.append(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--noop-runs", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("DOCKER_HOST", (STATE / "docker-host").read_text().strip())
    os.environ.setdefault("KUBECONFIG", str(STATE / "kubeconfig"))
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    runtime = DockerRuntime.connect(os.environ["DOCKER_HOST"])
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("create", "namespace", namespace)
    kubectl(
        "create",
        "secret",
        "generic",
        "redis",
        "-n",
        namespace,
        f"--from-literal=password={PASSWORD}",
    )
    kubectl(
        "create",
        "secret",
        "generic",
        "upstream",
        "-n",
        namespace,
        "--from-literal=api-key=bench-key",
    )
    env = {**os.environ, "KONGMASKER_RECONCILE_INTERVAL": "30"}
    # Kept open for the operator's whole life, closed by the OS at exit.
    log = tempfile.NamedTemporaryFile(prefix="bench-operator-", suffix=".log", delete=False)  # noqa: SIM115
    op = subprocess.Popen(
        [sys.executable, "-m", "kongmasker", "--namespace", namespace],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    results: dict[str, list[float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    try:
        with mock_upstream(client) as mock:
            results["floor: by hand, each polled (50 ms)"] = measure(
                "by hand", args.runs, lambda: by_hand(runtime, mock)
            )
            if shutil.which("docker-compose"):
                results["docker-compose 1.29, depends_on healthy"] = measure(
                    "compose", args.runs, lambda: compose(mock, workdir)
                )
            else:
                print("  docker-compose not installed: skipped (apt-get install docker-compose)")
            results["operator: kubectl apply -> Ready"] = measure(
                "operator", args.runs, lambda: operator_apply(namespace, mock)
            )
            results["operator: no-op reconcile (in-process)"] = noop_reconciles(
                namespace, mock, args.noop_runs
            )
    finally:
        op.terminate()
        op.wait(timeout=60)
        kubectl("delete", "namespace", namespace, "--wait=false")
        for c in client.containers.list(all=True, filters={"label": "kongmasker.io/bench=stack"}):
            c.remove(force=True)
        for c in client.containers.list(
            all=True, filters={"label": f"kongmasker.io/stack-namespace={namespace}"}
        ):
            c.remove(force=True)
        for v in client.volumes.list(
            filters={"label": f"kongmasker.io/stack-namespace={namespace}"}
        ):
            v.remove(force=True)
        for v in client.volumes.list():
            if (
                v.name.startswith((naming.stack_prefix("bench", "floor"), "compose"))
                or "_compose" in v.name
            ):
                v.remove(force=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nKongMaskerStack benchmark ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"dockerd {client.version()['Version']}, {os.cpu_count()} CPUs)"
    )
    for label, values in results.items():
        print(summary(label, values))


if __name__ == "__main__":
    main()
