"""Issue 5 end to end, the two outages the watch must heal on the real API server and dockerd:

* each component killed (SIGKILL from outside the operator): running again, the stack Ready
  again, a `ContainerExited` Warning Event naming it and the restart in
  `kongmasker_recovery_actions_total`;
* Redis stopped and held down (its port taken by another process, so that no restart can
  succeed until the test lets it): Kong refuses to forward identifiers it cannot map
  (fail-secure, 503, nothing reaches the upstream), the stack says Degraded with the reason,
  and once the port is free Redis comes back first and the stack is Ready again without its
  dependents having been restarted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.stack_env import (
    COMPONENTS,
    StackEnv,
    metric_samples,
    metric_value,
    start_operator,
    start_times,
)
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e


def _watched_operator(env: StackEnv, **extra: str) -> str:
    """Restart the test's operator with its metrics on a port of ours; returns /metrics.
    The watch is on by default; its pace comes from each stack's spec.monitoring."""
    assert env.operator is not None
    env.operator.stop()
    port = free_port()
    env.operator = start_operator(
        env.namespace,
        env.tmp / "operator-recovery.log",
        KONGMASKER_METRICS_ADDR=f"127.0.0.1:{port}",
        KONGMASKER_MONITOR_RESOURCES_INTERVAL="0",
        **extra,
    )
    return f"http://127.0.0.1:{port}/metrics"


FAST = {"periodSeconds": 2, "timeoutSeconds": 1, "startupGraceSeconds": 3}
"""Probe rounds every 2 s (the operator's default is 10 s), set in the stack's spec."""


def _exits(env: StackEnv, name: str, comp: str) -> list[dict[str, Any]]:
    return env.events_with(name, "ContainerExited", f"{comp}: container exited", "Warning")


def _ready_after(env: StackEnv, name: str, moment: str) -> dict[str, Any]:
    """The stack's status once a reconcile later than `moment` found it Ready."""

    def ready() -> dict[str, Any] | None:
        st = env.status(name)
        ok = st.get("phase") == "Ready" and st.get("lastReconcileTime", "") > moment
        return st if ok else None

    return wait_until(ready, timeout=120, what=f"{name} Ready in a reconcile after {moment}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_each_killed_component_is_restarted_and_reported(stack_env: StackEnv) -> None:
    env = stack_env
    url = _watched_operator(env)
    name = "killed"
    env.apply(name, env.spec(name, monitoring={"probes": FAST, "canary": {"periodSeconds": 0}}))
    env.wait_ready(name)

    for comp in COMPONENTS:
        [container] = env.by_component(name)[comp]
        before = start_times(env, name)[comp]
        killed_at = _now()
        # SIGKILL of the process from the host, as a crash or the OOM killer would end it
        # (`docker kill` counts as a manual stop, which Docker's policy leaves alone).
        container.reload()
        os.kill(int(container.attrs["State"]["Pid"]), signal.SIGKILL)

        def back(comp: str = comp, before: str = before) -> bool:
            [c] = env.by_component(name)[comp]
            c.reload()
            return c.status == "running" and c.attrs["State"]["StartedAt"] != before

        wait_until(back, timeout=60, what=f"{comp} running again after SIGKILL")
        wait_until(
            lambda comp=comp: _exits(env, name, comp),  # type: ignore[misc]
            timeout=60,
            what=f"a ContainerExited Event for {comp}",
        )
        _ready_after(env, name, killed_at)
        [after] = env.by_component(name)[comp]
        assert after.id == container.id, "restarted in place, not re-created"

    def restarts_counted() -> dict[str, float] | None:
        samples, stack = metric_samples(url), {"namespace": env.namespace, "name": name}
        found = {
            c: metric_value(samples, "kongmasker_recovery_actions_total", **stack, component=c,
                            reason="ContainerExited")
            for c in COMPONENTS
        }  # fmt: skip
        return found if all(v is not None for v in found.values()) else None

    counted = wait_until(
        restarts_counted,
        timeout=30,
        what="every component's restart in kongmasker_recovery_actions_total",
    )
    assert all((counted[c] or 0) >= 1 for c in COMPONENTS), counted
    # One Event per kill, each with the restart count against the budget.
    for comp in COMPONENTS:
        [event] = _exits(env, name, comp)[:1]
        assert "restart 1 of 5" in event["message"], event["message"]
    # The watch's record in status: every probe passing again, one restart each in the window.
    watch = wait_until(
        lambda: (
            w
            if all(
                (w := env.status(name).get("watch") or {})
                .get("components", {})
                .get(c, {})
                .get("restartsInWindow")
                == 1
                for c in COMPONENTS
            )
            else None
        ),
        timeout=90,
        what="status.watch counting one restart per component",
    )
    for comp in COMPONENTS:
        record = watch["components"][comp]
        assert record["probe"] == "Passed" and record["latencySeconds"] < 1, record


@contextlib.contextmanager
def _port_taken(port: int) -> Iterator[None]:
    """Another process holds 127.0.0.1:port; connections are accepted and dropped at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # Redis's old connections
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        sock.close()
        thread.join(timeout=5)


def test_redis_down_fails_secure_degrades_and_recovers_in_order(stack_env: StackEnv) -> None:
    env = stack_env
    # The watch and the drift reconcile wait this long after an exit: long enough for the
    # test to take the port first.
    _watched_operator(env, KONGMASKER_RECONCILE_EVENT_DEBOUNCE="3")
    name = "noredis"
    # Small backoff and a large budget, the stack's own: Redis must come back as soon as its
    # port is free.
    recovery = {"backoffSeconds": 1, "maxBackoffSeconds": 4, "restartBudget": 100}
    monitoring = {"probes": FAST, "recovery": recovery, "canary": {"periodSeconds": 0}}
    env.apply(name, env.spec(name, monitoring=monitoring))
    status = env.wait_ready(name)
    proxy = f"{status['endpoints']['proxy']}/v1/messages"
    before = start_times(env, name)
    ids = {c: v[0].id for c, v in env.by_component(name).items()}
    [redis_container] = env.by_component(name)["redis"]

    redis_container.stop(timeout=10)
    with _port_taken(env.ports[name]["redis"]):
        # Fail-secure: an identifier Kong cannot map is not forwarded.
        marker = f"i-0{uuid.uuid4().hex[:16]}"  # an EC2 instance id never seen before
        body = {"messages": [{"role": "user", "content": f"is {marker} up?"}]}
        resp = httpx.post(proxy, json=body, timeout=30)
        assert resp.status_code == 503, resp.text
        assert "fail-secure" in resp.text
        seen = json.dumps(httpx.get(f"{env.mock_url}/__requests").json())
        assert marker not in seen, "an unmasked identifier reached the upstream"

        degraded = env.wait_condition(name, "Degraded", "True", timeout=90)
        assert "redis" in degraded["message"], degraded
        assert env.status(name)["phase"] == "Degraded"
        ready = env.condition(name, "Ready")
        assert ready["status"] == "False" and "redis" in ready["message"], ready

    # Port free: Redis first, then the stack is Ready; nothing downstream was restarted.
    status = env.wait_ready(name, timeout=120)
    after = start_times(env, name)
    assert after["redis"] > before["redis"]
    for comp in ("kong", "nginx", "backend"):
        assert after[comp] == before[comp], f"{comp} was restarted: it should wait for Redis"
        assert env.by_component(name)[comp][0].id == ids[comp]
    assert status["components"]["redis"]["state"] == "Healthy"

    resp = httpx.post(proxy, json=body, timeout=30)
    assert resp.status_code == 200 and marker in resp.text
    seen = json.dumps(httpx.get(f"{env.mock_url}/__requests").json())
    assert marker not in seen
    redis_events = [e for e in env.events(name) if str(e.get("message", "")).startswith("redis:")]
    assert redis_events, "the Redis outage and its recovery are Events"
    assert not [
        e
        for e in env.events(name)
        if e.get("reason") in ("ContainerExited", "ProbesFailing")
        and not str(e.get("message", "")).startswith("redis:")
    ], "only Redis was acted on"
