"""Health gates: one function per component answering "is it healthy, and if not, why".

Gates are plain functions of (spec, probes, secrets) so that issue 5's periodic probes and
canary reuse them; `wait_healthy` polls one gate until it passes or a deadline expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kongmasker.adapters.probes import ProbeFailed, Probes
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok


Gate = Callable[[StackSpec, Probes, Mapping[str, str]], Health]


def redis_gate(spec: StackSpec, probes: Probes, secrets: Mapping[str, str]) -> Health:
    """PING with the Secret's password answers PONG."""
    host = spec.docker_host.address
    try:
        answer = probes.redis(host, spec.redis.port, secrets.get("REDIS_PASSWORD"), "PING")
    except ProbeFailed as exc:
        return Health(False, str(exc))
    if answer not in (True, b"PONG", "PONG"):
        return Health(False, f"PING answered {answer!r}")
    return Health(True, "PING answered PONG")


def kong_gate(spec: StackSpec, probes: Probes, secrets: Mapping[str, str]) -> Health:
    """Kong's /status/ready is 200 and aws-masker is in /plugins/enabled."""
    base = spec.docker_host.address
    ready = probes.http_get(f"http://{base}:{spec.kong.status_port}/status/ready")
    if not ready.ok:
        return Health(False, f"Kong /status/ready: {_describe(ready.status, ready.error)}")
    enabled = probes.http_get(f"http://{base}:{spec.kong.admin_port}/plugins/enabled")
    if not enabled.ok:
        return Health(False, f"Kong /plugins/enabled: {_describe(enabled.status, enabled.error)}")
    plugins = enabled.body.get("enabled_plugins", []) if isinstance(enabled.body, dict) else []
    if "aws-masker" not in plugins:
        return Health(False, "Kong is up but the aws-masker plugin is not enabled")
    return Health(True, "ready, aws-masker enabled")


def nginx_gate(spec: StackSpec, probes: Probes, secrets: Mapping[str, str]) -> Health:
    """Nginx answers /health itself and /health/ready through to Kong."""
    base = f"http://{spec.docker_host.address}:{spec.nginx.port}"
    own = probes.http_get(f"{base}/health")
    if not own.ok:
        return Health(False, f"Nginx /health: {_describe(own.status, own.error)}")
    through = probes.http_get(f"{base}/health/ready")
    if not through.ok:
        return Health(
            False, f"Nginx -> Kong /status/ready: {_describe(through.status, through.error)}"
        )
    return Health(True, "answering, Kong reachable through it")


def backend_gate(spec: StackSpec, probes: Probes, secrets: Mapping[str, str]) -> Health:
    """Backend's /health/ready is 200 (it checks Kong and Redis itself)."""
    ready = probes.http_get(f"http://{spec.docker_host.address}:{spec.backend.port}/health/ready")
    if not ready.ok:
        detail = ready.body if isinstance(ready.body, (str, dict)) and ready.status else ""
        return Health(
            False, f"Backend /health/ready: {_describe(ready.status, ready.error)} {detail}".strip()
        )
    return Health(True, "ready, Kong and Redis reachable from it")


GATES: dict[Component, Gate] = {
    Component.REDIS: redis_gate,
    Component.KONG: kong_gate,
    Component.NGINX: nginx_gate,
    Component.BACKEND: backend_gate,
}


def check(comp: Component, spec: StackSpec, probes: Probes, secrets: Mapping[str, str]) -> Health:
    """Run one component's gate once."""
    return GATES[comp](spec, probes, secrets)


def wait_healthy(
    comp: Component,
    spec: StackSpec,
    probes: Probes,
    secrets: Mapping[str, str],
    *,
    timeout: float,
    interval: float,
    still_running: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Health:
    """Poll the gate until it passes or `timeout` expires; returns the last answer.

    `still_running` lets the caller stop early when the container has exited (waiting
    on a dead process only delays the report).
    """
    deadline = clock() + timeout
    while True:
        health = check(comp, spec, probes, secrets)
        if health.ok:
            return health
        if still_running is not None and not still_running():
            return Health(False, f"container exited: {health.message}")
        if clock() >= deadline:
            return health
        sleep(interval)


def _describe(status: int, error: str) -> str:
    return f"HTTP {status}" if status else (error or "no answer")
