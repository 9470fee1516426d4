"""KongMaskerStack lifecycle on the real kube-apiserver and dockerd, the operator running as
a subprocess: Create -> Ready in dependency order with health gating, masking through the
stack, graceful delete in reverse order with Redis data kept for a re-created stack, and the
restart annotation."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import docker.errors
import httpx
import pytest
import redis
from tests.e2e.stack_env import (
    REDIS_PASSWORD,
    StackEnv,
    epoch_ns,
    start_operator,
    start_times,
)
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e
ORDER = ["redis", "kong", "nginx", "backend"]


def test_create_reaches_ready_in_order_and_masks(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("demo", env.spec("demo"))
    status = env.wait_ready("demo")

    # Start order, proven by the engine's own start times.
    started = start_times(env, "demo")
    assert sorted(ORDER, key=lambda c: epoch_ns(started[c])) == ORDER, started

    # Status: phase, generation, conditions in metav1.Condition shape, components, endpoints.
    assert status["phase"] == "Ready" and status["readyComponents"] == "4/4"
    assert status["observedGeneration"] == env.get("demo")["metadata"]["generation"]
    types = {c["type"]: c for c in status["conditions"]}
    assert {"Ready", "Progressing", "Degraded", "PreflightPassed"} <= set(types)
    for c in types.values():
        assert {"status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(c)
    assert types["PreflightPassed"]["status"] == "True"
    assert "Docker 20." in types["PreflightPassed"]["message"]
    ports = env.ports["demo"]
    assert status["endpoints"]["proxy"] == f"http://127.0.0.1:{ports['nginx']}"
    assert status["endpoints"]["backend"] == f"http://127.0.0.1:{ports['backend']}"
    assert status["endpoints"]["kongAdmin"] == f"http://127.0.0.1:{ports['admin']}"
    uid = env.get("demo")["metadata"]["uid"]
    for comp in ORDER:
        st = status["components"][comp]
        assert st["state"] == "Healthy", st
        [container] = env.by_component("demo")[comp]
        assert container.labels["kongmasker.io/stack-uid"] == uid
        assert container.labels["app.kubernetes.io/part-of"] == "kongmasker"
        assert container.id.startswith(st["containerID"])

    # Printer columns.
    table = env.kubectl("get", "kms", "demo", "-n", env.namespace).stdout
    assert "Ready" in table and "4/4" in table and status["endpoints"]["proxy"] in table

    # The stack works: an AWS id is masked before it reaches the upstream and restored after.
    body = {"messages": [{"role": "user", "content": "why is i-1234567890abcdef0 slow?"}]}
    resp = httpx.post(f"{status['endpoints']['proxy']}/v1/messages", json=body, timeout=30)
    assert resp.status_code == 200 and "i-1234567890abcdef0" in resp.text
    seen = httpx.get(f"{env.mock_url}/__requests").json()
    assert "i-1234567890abcdef0" not in json.dumps(seen) and "AWS_EC2_" in json.dumps(seen)

    # Secrets never reach status or Events.
    blob = json.dumps(status) + json.dumps(env.events("demo"))
    assert REDIS_PASSWORD not in blob


def test_unhealthy_component_holds_back_the_next(stack_env: StackEnv) -> None:
    env = stack_env
    # A "Kong" that runs but never serves /status/ready: the Redis image on a spare port.
    spare = free_port()
    spec = env.spec(
        "stuck",
        kong={
            "image": "kongmasker/redis:dev",
            "env": [{"name": "REDIS_PORT", "value": str(spare)}],
        },
    )
    env.apply("stuck", spec)
    ready = env.wait_condition("stuck", "Ready", "False", reason="HealthGateFailed", timeout=150)
    assert ready["message"].startswith("kong: not healthy")
    status = env.status("stuck")
    assert status["components"]["redis"]["state"] == "Healthy"
    assert status["components"]["kong"]["state"] == "Unhealthy"
    assert status["components"]["nginx"]["state"] in ("Waiting", "Absent")
    assert status["phase"] == "Degraded"
    found = env.by_component("stuck")
    assert len(found["redis"]) == 1 and len(found["kong"]) == 1
    assert found["nginx"] == [] and found["backend"] == [], "nginx/backend must be held back"

    # Fixing the spec lets the rest start.
    env.apply("stuck", env.spec("stuck"))
    env.wait_ready("stuck")
    assert all(len(v) == 1 for v in env.by_component("stuck").values())


class DieRecorder:
    """Streams Docker `die` events of one stack's containers from before an action until
    `stop()`, in the order the engine emits them."""

    def __init__(self, env: StackEnv, name: str) -> None:
        filters = {"type": "container", "event": "die", "label": f"kongmasker.io/stack-name={name}"}
        self._stream = env.client.events(decode=True, filters=filters)
        self.components: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for event in self._stream:
                self.components.append(event["Actor"]["Attributes"]["kongmasker.io/component"])
        except Exception:  # the stream ends with an error when it is closed
            return

    def stop(self, expect: int = 4) -> list[str]:
        """The components seen once `expect` events arrived (or 15 s passed)."""
        # On a timeout the comparison in the test shows what is missing.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: len(self.components) >= expect, timeout=15, what="die events")
        self._stream.close()
        self._thread.join(timeout=10)
        return self.components


def test_delete_stops_in_reverse_order_and_keeps_redis_data(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("keep", env.spec("keep"))
    status = env.wait_ready("keep")
    r = redis.Redis(port=env.ports["keep"]["redis"], password=REDIS_PASSWORD)
    r.set("aws_masker:map:AWS_EC2_900", "i-0123456789abcdef0")
    r.close()

    dies = DieRecorder(env, "keep")
    env.delete("keep")
    assert dies.stop() == ["backend", "nginx", "kong", "redis"]
    assert env.containers("keep") == []
    volumes = env.client.volumes.list(filters={"name": env.redis_volume("keep")})
    assert volumes, "the Redis volume must be kept"
    stopped = [e["message"] for e in env.events("keep") if e["reason"] == "Stopped"]
    assert any("Redis saved (LASTSAVE" in m for m in stopped), stopped
    assert any("Backend -> Nginx -> Kong -> Redis" in m for m in stopped), stopped

    # A new stack of the same name finds the data again.
    env.apply("keep", env.spec("keep"))
    env.wait_ready("keep")
    r = redis.Redis(port=env.ports["keep"]["redis"], password=REDIS_PASSWORD)
    assert r.get("aws_masker:map:AWS_EC2_900") == b"i-0123456789abcdef0"
    r.close()
    assert status["components"]["redis"]["state"] == "Healthy"


def test_restart_annotation_stops_and_starts_in_order(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("rs", env.spec("rs"))
    env.wait_ready("rs")
    before = {c: v[0].id for c, v in env.by_component("rs").items()}
    dies = DieRecorder(env, "rs")
    env.kubectl("annotate", "kms", "rs", "-n", env.namespace, "kongmasker.io/restartedAt=t1")

    def restarted() -> dict[str, Any] | None:
        st = env.status("rs")
        return st if st.get("restartedAt") == "t1" and st.get("phase") == "Ready" else None

    wait_until(restarted, timeout=180, what="restart handled and Ready again")
    after = {c: v[0].id for c, v in env.by_component("rs").items()}
    assert all(before[c] != after[c] for c in ORDER), "every container is new"
    assert dies.stop() == ["backend", "nginx", "kong", "redis"]
    started = start_times(env, "rs")
    assert sorted(ORDER, key=lambda c: epoch_ns(started[c])) == ORDER
    # Handled once: the next reconciles (timer, a metadata change) do not restart again.
    last = env.status("rs")["lastReconcileTime"]
    env.kubectl("annotate", "kms", "rs", "-n", env.namespace, "touched=yes")
    wait_until(
        lambda: env.status("rs").get("lastReconcileTime", last) > last,
        timeout=60,
        what="a later reconcile",
    )
    assert {c: v[0].id for c, v in env.by_component("rs").items()} == after


def test_orphans_of_stacks_deleted_while_the_operator_was_down_are_removed(
    stack_env: StackEnv,
) -> None:
    env = stack_env
    env.apply("gone", env.spec("gone"))
    env.wait_ready("gone")
    ids = [c.id for c in env.containers("gone")]
    assert env.operator is not None
    env.operator.stop()
    # Delete while no operator runs: drop the finalizer so the object really goes.
    env.kubectl(
        "patch",
        "kms",
        "gone",
        "-n",
        env.namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":[]}}',
    )
    env.kubectl("delete", "kms", "gone", "-n", env.namespace, "--ignore-not-found")
    assert len(env.containers("gone")) == 4
    env.operator = start_operator(env.namespace, env.tmp / "operator2.log")
    wait_until(lambda: env.containers("gone") == [], timeout=120, what="orphans removed")
    for cid in ids:
        with pytest.raises(docker.errors.NotFound):
            env.client.containers.get(cid)
