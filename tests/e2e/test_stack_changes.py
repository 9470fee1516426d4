"""KongMaskerStack changes on the real kube-apiserver and dockerd: drift repair without
duplicates, updates that touch only the affected components (and config-only changes
applied live), invalid specs (rejected by CEL, or reported as conditions), and two stacks on
one Docker host."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from tests.e2e.stack_env import PART_OF, StackEnv
from tests.support import free_port, wait_until

pytestmark = pytest.mark.e2e
ORDER = ["redis", "kong", "nginx", "backend"]


def _ids(env: StackEnv, name: str) -> dict[str, str]:
    found = env.by_component(name)
    assert all(len(v) == 1 for v in found.values()), {k: len(v) for k, v in found.items()}
    return {c: v[0].id for c, v in found.items()}


def _healthy_again(env: StackEnv, name: str) -> dict[str, Any]:
    def ok() -> dict[str, Any] | None:
        found = env.by_component(name)
        if any(len(v) != 1 or v[0].status != "running" for v in found.values()):
            return None
        st = env.status(name)
        ready = next((c for c in st.get("conditions", []) if c["type"] == "Ready"), {})
        return st if ready.get("status") == "True" else None

    return wait_until(ok, timeout=120, what=f"{name} repaired and Ready", interval=0.5)


def test_drift_is_repaired_without_duplicates(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("drift", env.spec("drift"))
    env.wait_ready("drift")
    before = _ids(env, "drift")

    # Deleted, stopped, and replaced by a foreign container of another image under our name.
    env.client.containers.get(before["nginx"]).remove(force=True)
    env.client.containers.get(before["backend"]).stop(timeout=5)
    env.client.containers.get(before["kong"]).remove(force=True)
    intruder = env.client.containers.create(
        "kongmasker/nginx:dev",
        name=env.container_name("drift", "kong"),
        network_mode="host",
        labels={**PART_OF, "kongmasker.io/test": "intruder"},
    )
    _healthy_again(env, "drift")
    after = _ids(env, "drift")
    assert after["redis"] == before["redis"], "untouched component kept"
    assert after["backend"] == before["backend"], "a stopped container is started, not replaced"
    assert after["nginx"] != before["nginx"] and after["kong"] != before["kong"]
    kong = env.client.containers.get(after["kong"])
    assert kong.image.tags and "kongmasker/gateway:dev" in kong.image.tags
    with pytest.raises(Exception, match="No such container"):
        env.client.containers.get(intruder.id)

    # Exactly 4 containers for the stack, each labelled with the owner's UID.
    uid = env.get("drift")["metadata"]["uid"]
    containers = env.containers("drift")
    assert len(containers) == 4
    assert {c.labels["kongmasker.io/stack-uid"] for c in containers} == {uid}
    wait_until(
        lambda: {"Created", "Started"} <= {e["reason"] for e in env.events("drift")},
        timeout=30,
        what="Created and Started Events",
    )


def test_image_or_env_update_touches_only_that_component(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("upd", env.spec("upd"))
    env.wait_ready("upd")
    before = _ids(env, "upd")
    gen = env.get("upd")["metadata"]["generation"]

    env.apply("upd", env.spec("upd", backend={"env": [{"name": "ANTHROPIC_MODEL", "value": "m2"}]}))
    wait_until(
        lambda: (
            env.status("upd").get("observedGeneration", 0) > gen
            and env.condition("upd", "Ready").get("status") == "True"
        ),
        timeout=120,
        what="update applied",
    )
    after = _ids(env, "upd")
    assert {c for c in ORDER if before[c] != after[c]} == {"backend"}
    env_list = env.client.containers.get(after["backend"]).attrs["Config"]["Env"]
    assert "ANTHROPIC_MODEL=m2" in env_list


def test_config_only_change_is_applied_live(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("cfg", env.spec("cfg"))
    status = env.wait_ready("cfg")
    before = _ids(env, "cfg")
    admin = status["endpoints"]["kongAdmin"]
    gen = env.get("cfg")["metadata"]["generation"]

    spec = env.spec("cfg", kong={"routePaths": ["/v1", "/v2"]}, nginx={"proxyTimeoutSeconds": 75})
    env.apply("cfg", spec)
    wait_until(
        lambda: (
            env.status("cfg").get("observedGeneration", 0) > gen
            and env.condition("cfg", "Ready").get("status") == "True"
        ),
        timeout=120,
        what="config change applied",
    )
    assert _ids(env, "cfg") == before, "config-only changes must not recreate containers"
    for cid in before.values():
        assert env.client.containers.get(cid).attrs["RestartCount"] == 0
    config = httpx.get(f"{admin}/config").json()
    assert "/v2" in json.dumps(config), "Kong got the new route by POST /config"
    nginx = env.client.containers.get(before["nginx"])
    _, out = nginx.exec_run(["cat", "/etc/kongmasker/nginx.conf"])
    assert b"proxy_read_timeout 75s;" in out
    # Nginx serves with the reloaded config (same master process, new workers).
    assert httpx.get(f"{status['endpoints']['proxy']}/health/ready").status_code == 200
    wait_until(
        lambda: any(e["reason"] == "ConfigApplied" for e in env.events("cfg")),
        timeout=30,
        what="ConfigApplied Event",
    )


@pytest.mark.parametrize(
    ("overrides", "field_message"),
    [
        ({"nginx": {"port": 0}}, "spec.nginx.port"),
        ({"network": {"mode": "bridge"}}, "network.name is required"),
        ({"upstream": {"url": "ftp://example"}}, "spec.upstream.url"),
        ({"redis": {"resources": {"memory": "lots"}}}, "spec.redis.resources.memory"),
    ],
)
def test_invalid_specs_are_rejected_by_the_api_server(
    stack_env: StackEnv, overrides: dict[str, Any], field_message: str
) -> None:
    env = stack_env
    spec = env.spec("bad", **overrides)
    if overrides.get("nginx", {}).get("port") == 0:
        spec["nginx"]["port"] = spec["redis"]["port"]  # duplicate host port
        field_message = "host ports must be distinct"
    result = env.apply("bad", spec, check=False)
    assert result.returncode != 0
    assert field_message in result.stderr, result.stderr
    assert env.containers("bad") == []


def test_immutable_network_mode(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("imm", {**env.spec("imm"), "paused": True})
    spec = {**env.spec("imm"), "paused": True, "network": {"mode": "bridge", "name": "x"}}
    result = env.apply("imm", spec, check=False)
    assert result.returncode != 0 and "network.mode is immutable" in result.stderr


def test_missing_secret_is_a_condition_then_recovers(stack_env: StackEnv) -> None:
    env = stack_env
    spec = env.spec("nosec", backend={"apiKeySecretRef": {"name": "backend-key"}})
    env.apply("nosec", spec)
    cond = env.wait_condition("nosec", "PreflightPassed", "False", reason="SecretMissing")
    assert "backend-key" in cond["message"] and "create it" in cond["message"]
    assert env.containers("nosec") == [], "nothing starts before the preflight passes"
    assert env.status("nosec")["phase"] == "Pending"
    assert env.operator is not None and env.operator.proc.poll() is None, "no crash"

    env.kubectl(
        "create",
        "secret",
        "generic",
        "backend-key",
        "-n",
        env.namespace,
        "--from-literal=api-key=k",
    )
    env.wait_ready("nosec")


def test_port_taken_by_another_process_is_a_condition(stack_env: StackEnv) -> None:
    env = stack_env
    spec = env.spec("port")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", spec["nginx"]["port"]))
    squatter.listen(1)
    try:
        env.apply("port", spec)
        cond = env.wait_condition("port", "PreflightPassed", "False", reason="PortInUse")
        assert f"spec.nginx.port={spec['nginx']['port']}" in cond["message"]
        assert env.containers("port") == []
    finally:
        squatter.close()
    env.wait_ready("port")


def test_two_stacks_side_by_side(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("one", env.spec("one"))
    env.apply("two", env.spec("two"))
    one, two = env.wait_ready("one"), env.wait_ready("two")
    assert one["endpoints"]["proxy"] != two["endpoints"]["proxy"]
    ids_one = _ids(env, "one")
    assert len(env.containers()) == 8

    body = {"messages": [{"role": "user", "content": "bucket s3://my-production-bucket/key"}]}
    for st in (one, two):
        resp = httpx.post(f"{st['endpoints']['proxy']}/v1/messages", json=body, timeout=30)
        assert resp.status_code == 200 and "my-production-bucket" in resp.text

    env.delete("two")
    assert env.containers("two") == []
    assert _ids(env, "one") == ids_one, "deleting one stack leaves the other untouched"
    assert env.condition("one", "Ready")["status"] == "True"


def test_bridge_network_mode(stack_env: StackEnv) -> None:
    env = stack_env
    network = f"km-e2e-{env.namespace}"
    # In bridge mode the upstream must be reachable from the network: a mock upstream on it,
    # published on 127.0.0.1 so the test can read what it received.
    env.client.networks.create(network, driver="bridge", labels=PART_OF)
    mock_port = free_port()
    mock = env.client.containers.run(
        "kongmasker/mockupstream:dev",
        detach=True,
        name=f"{network}-mock",
        network=network,
        environment={"MOCK_LISTEN": "0.0.0.0:8090"},
        ports={8090: ("127.0.0.1", mock_port)},
        labels={**PART_OF, "kongmasker.io/test": "e2e-stack"},
    )
    spec = env.spec("br", network={"mode": "bridge", "name": network})
    spec["upstream"]["url"] = f"http://{network}-mock:8090"
    env.apply("br", spec)
    try:
        status = env.wait_ready("br")
        for c in env.containers("br"):
            assert network in c.attrs["NetworkSettings"]["Networks"], c.name
        body = {"messages": [{"role": "user", "content": "ip 10.0.1.23 and vol-049df61146f12c45a"}]}
        resp = httpx.post(f"{status['endpoints']['proxy']}/v1/messages", json=body, timeout=30)
        assert resp.status_code == 200 and "vol-049df61146f12c45a" in resp.text
        seen = json.dumps(httpx.get(f"http://127.0.0.1:{mock_port}/__requests").json())
        assert "vol-049df61146f12c45a" not in seen and "10.0.1.23" not in seen
        backend = httpx.get(f"{status['endpoints']['backend']}/health/ready")
        assert backend.status_code == 200
    finally:
        env.delete("br")
        mock.remove(force=True)
        for net in env.client.networks.list(names=[network]):
            net.remove()


def test_paused_stack_is_left_alone_until_resumed(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("pz", env.spec("pz"))
    env.wait_ready("pz")
    env.apply("pz", {**env.spec("pz"), "paused": True})
    env.wait_condition("pz", "Progressing", "False", reason="Paused")
    assert env.status("pz")["phase"] == "Paused"
    nginx = env.by_component("pz")["nginx"][0]
    nginx.remove(force=True)
    # Let at least one more reconcile (timer, Docker event) pass, then check nothing was done.
    last = env.status("pz")["lastReconcileTime"]
    wait_until(
        lambda: env.status("pz").get("lastReconcileTime", last) > last,
        timeout=60,
        what="a reconcile while paused",
    )
    assert env.by_component("pz")["nginx"] == [], "a paused stack is not repaired"
    env.apply("pz", env.spec("pz"))
    _healthy_again(env, "pz")
