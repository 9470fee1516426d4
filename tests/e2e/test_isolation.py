"""Tenant isolation end to end (issue 11) on the real kube-apiserver and dockerd, with the
real images and the operator as a subprocess (tests/e2e/stack_env.py).

* the pair `adv-7/x-y` and `adv-7-x/y` (random-suffixed namespaces of that shape), whose
  names collided before, both become Ready and stay Ready with separate Redis data;
* a stack naming another stack's volume in `redis.persistence.volumeName` is refused with
  a condition, and nothing is started for it;
* `volumeName` cannot be added to a running stack, nor changed or removed (the API server
  refuses the update: CEL transition rules at the parent object);
* a stack made under the previous naming scheme (old-named containers and volume, as the
  previous version made them) comes up under the new names with its Redis keys;
* two operators with different identities on one engine leave each other's containers
  alone (start-up sweep and repairs), and each sweeps its own.

The mock upstream stands in for the external AI API (unreachable here).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis
from tests.e2e.stack_env import (
    REDIS_PASSWORD,
    Kubectl,
    StackEnv,
    _teardown,
    start_operator,
)
from tests.support import wait_until

from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import LABEL_OPERATOR, START_ORDER
from kongmasker.core.render import StackRef, render_stack

pytestmark = pytest.mark.e2e

STAY_READY_SECONDS = int(os.environ.get("KONGMASKER_ISOLATION_WINDOW", "60"))
"""How long the colliding pair is watched after both are Ready. The issue asks for 5
minutes; the reported failure (each reconcile deleting the other's containers) showed within
one reconcile period, and the operator here reconciles every 5 s (stack_env.start_operator),
so 60 s covers 12 periodic reconciles of each stack at a fifth of the CI time. The full
window: KONGMASKER_ISOLATION_WINDOW=300 pytest tests/e2e/test_isolation.py -k colliding."""


def _namespace_env(
    kubectl: Kubectl, client: docker.DockerClient, namespace: str, mock: str, tmp: Path
) -> StackEnv:
    kubectl("create", "namespace", namespace)
    env = StackEnv(kubectl, client, namespace, mock, tmp)
    env.secrets()
    return env


@pytest.fixture
def pair(
    kubectl: Kubectl,
    stack_crd: None,
    docker_client: docker.DockerClient,
    mock_upstream: str,
    tmp_path: Path,
) -> Iterator[tuple[StackEnv, StackEnv]]:
    """Namespaces `adv<r>-7` and `adv<r>-7-x`, one operator watching both."""
    r = uuid.uuid4().hex[:5]
    a = _namespace_env(kubectl, docker_client, f"adv{r}-7", mock_upstream, tmp_path)
    b = _namespace_env(kubectl, docker_client, f"adv{r}-7-x", mock_upstream, tmp_path)
    operator = start_operator([a.namespace, b.namespace], tmp_path / "operator.log")
    a.operator = b.operator = operator
    try:
        yield a, b
    finally:
        # Both namespaces' stacks go while the operator still runs (it releases their
        # finalizers); _teardown then stops it and removes whatever is left.
        for env in (a, b):
            kubectl("delete", "kongmaskerstacks", "--all", "-n", env.namespace,
                    "--timeout=120s", check=False)  # fmt: skip
        _teardown(a)
        _teardown(b)


def _redis(env: StackEnv, name: str) -> redis.Redis:
    port = env.ports[name]["redis"]
    return redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD, socket_timeout=10)


def _ids(env: StackEnv, name: str) -> dict[str, str]:
    return {comp: found[0].id for comp, found in env.by_component(name).items() if found}


def test_the_colliding_pair_is_ready_with_separate_data(pair: tuple[StackEnv, StackEnv]) -> None:
    a, b = pair
    assert naming.legacy_container_name(a.namespace, "x-y", "redis") == (
        naming.legacy_container_name(b.namespace, "y", "redis")
    ), "the pair must be one that collided under the old names"
    a.apply("x-y", a.spec("x-y"))
    b.apply("y", b.spec("y"))
    a.wait_ready("x-y")
    b.wait_ready("y")
    ra, rb = _redis(a, "x-y"), _redis(b, "y")
    ra.set("owner", a.namespace)
    rb.set("owner", b.namespace)
    ids = (_ids(a, "x-y"), _ids(b, "y"))
    assert len(ids[0]) == len(ids[1]) == 4 and not set(ids[0].values()) & set(ids[1].values())
    for comp in START_ORDER:
        assert {c.name for c in a.by_component("x-y")[comp]} == {a.container_name("x-y", comp)}
        assert {c.name for c in b.by_component("y")[comp]} == {b.container_name("y", comp)}

    deadline = time.monotonic() + STAY_READY_SECONDS
    checks = 0
    while time.monotonic() < deadline:
        for env, name, r in ((a, "x-y", ra), (b, "y", rb)):
            assert env.condition(name, "Ready").get("status") == "True", env.status(name)
            assert r.get("owner") == env.namespace.encode(), "each sees only its own data"
        assert (_ids(a, "x-y"), _ids(b, "y")) == ids, "no container was replaced"
        checks += 1
        time.sleep(5)  # the window's pace, not synchronisation: each check is a full assert
    assert checks >= 10
    for env, name in ((a, "x-y"), (b, "y")):
        churn = [e for e in env.events(name) if e.get("reason") in ("Removed", "Recreated")]
        assert churn == [], churn


def test_foreign_and_changed_volume_names_are_refused(pair: tuple[StackEnv, StackEnv]) -> None:
    a, b = pair
    a.apply("x-y", a.spec("x-y"))
    a.wait_ready("x-y")
    victim = a.redis_volume("x-y")
    _redis(a, "x-y").set("secret-mapping", "i-0123456789abcdef0")

    # Another namespace's stack names the victim's volume: refused, nothing started.
    b.apply("thief", b.spec("thief", redis={"persistence": {"volumeName": victim}}))
    cond = b.wait_condition("thief", "PreflightPassed", "False", reason="ForeignVolume")
    assert "spec.redis.persistence.volumeName" in cond["message"]
    assert f"{a.namespace}/x-y" in cond["message"]
    assert b.containers("thief") == []

    # Adding volumeName to the running stack: the API server refuses the update.
    spec = a.spec("x-y")
    added = a.apply(
        "x-y",
        {**spec, "redis": {**spec["redis"], "persistence": {"volumeName": "new"}}},
        check=False,
    )
    assert added.returncode != 0 and "volumeName is immutable" in added.stderr, added.stderr
    assert _redis(a, "x-y").get("secret-mapping") == b"i-0123456789abcdef0"

    # Changing and removing it on a stack that has one: refused as well.
    own = f"km-e2e-own-{uuid.uuid4().hex[:6]}"
    with_vol = b.spec("pv", paused=True, redis={"persistence": {"volumeName": own}})
    b.apply("pv", with_vol)
    changed = {**with_vol, "redis": {**with_vol["redis"], "persistence": {"volumeName": own + "x"}}}
    removed = {
        **with_vol,
        "redis": {k: v for k, v in with_vol["redis"].items() if k != "persistence"},
    }
    for attempt in (changed, removed):
        out = b.apply("pv", attempt, check=False)
        assert out.returncode != 0 and "volumeName is immutable" in out.stderr, out.stderr
    assert b.get("pv")["spec"]["redis"]["persistence"]["volumeName"] == own


def test_a_stack_of_the_previous_naming_scheme_migrates_with_its_data(
    stack_env: StackEnv,
) -> None:
    env = stack_env
    name = "legacy"
    env.apply(name, env.spec(name, paused=True))
    uid = env.get(name)["metadata"]["uid"]
    spec = StackSpec.from_dict(env.spec(name))
    ref = StackRef(env.namespace, name, uid)
    secrets = {"REDIS_PASSWORD": REDIS_PASSWORD, "ANTHROPIC_API_KEY": "k"}
    desired = render_stack(ref, spec, secrets, 10)
    old_volume = naming.legacy_redis_volume(env.namespace, name)
    # As the previous version made them: old names, no operator identity, the volume
    # labelled with namespace/name only.
    env.client.volumes.create(old_volume, labels=dict(ref.name_labels()))
    made = []
    for comp in START_ORDER:
        c = desired[comp].container
        labels = {k: v for k, v in c.labels.items() if k != LABEL_OPERATOR}
        made.append(
            env.client.containers.create(
                c.image,
                name=naming.legacy_container_name(env.namespace, name, comp),
                environment=dict(c.env),
                labels=labels,
                network_mode="host",
                volumes={old_volume: {"bind": "/data", "mode": "rw"}} if comp == "redis" else {},
            )
        )
    made[0].start()  # Redis, with data in the old volume
    old = redis.Redis(host="127.0.0.1", port=env.ports[name]["redis"], password=REDIS_PASSWORD)
    wait_until(lambda: old.ping(), timeout=60, what="the legacy Redis")
    old.set("aws_masker:map:EC2_001", "i-0123456789abcdef0")
    old.set("kept-across-migration", "yes")

    env.apply(name, env.spec(name))  # unpause: the operator migrates, then starts
    env.wait_ready(name)
    new = _redis(env, name)
    assert new.get("kept-across-migration") == b"yes"
    assert new.get("aws_masker:map:EC2_001") == b"i-0123456789abcdef0"
    for comp in START_ORDER:
        [c] = env.by_component(name)[comp]
        assert c.name == env.container_name(name, comp)
        legacy = naming.legacy_container_name(env.namespace, name, comp)
        assert env.client.containers.list(all=True, filters={"name": f"^/{legacy}$"}) == []
    assert old_volume not in {v.name for v in env.client.volumes.list()}
    assert env.redis_volume(name) in {v.name for v in env.client.volumes.list()}
    migrated = env.events_with(name, "Migrated")
    assert migrated and old_volume in migrated[0]["message"], env.events(name)


def test_two_operators_leave_each_other_alone(stack_env: StackEnv, tmp_path: Path) -> None:
    env = stack_env
    assert env.operator is not None
    env.operator.stop()
    ns = env.namespace
    op_a = start_operator([ns], tmp_path / "op-a.log", KONGMASKER_OPERATOR_ID=f"op-a-{ns}")
    env.operator = op_a
    env.apply("s", env.spec("s"))
    env.wait_ready("s")
    ids = _ids(env, "s")
    assert all(
        c.labels[LABEL_OPERATOR] == f"op-a-{ns}"
        for found in env.by_component("s").values()
        for c in found
    )
    # A's stack disappears while A is down: its containers are A's orphans now.
    op_a.stop()
    env.kubectl(
        "patch",
        "kongmaskerstack",
        "s",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":[]}}',
    )
    env.kubectl("delete", "kongmaskerstack", "s", "-n", ns, "--wait=true")
    # B (another identity, same namespace scope) starts: its sweep must not touch them, and
    # a stack of its own with the same namespace/name must not take their names or volume.
    op_b = start_operator([ns], tmp_path / "op-b.log", KONGMASKER_OPERATOR_ID=f"op-b-{ns}")
    env.operator = op_b
    env.ports.pop("s")
    env.apply("s", env.spec("s"))
    cond = env.wait_condition("s", "PreflightPassed", "False", reason="ForeignVolume")
    assert f"op-a-{ns}" in cond["message"]
    # (B's start-up sweep ran before it reconciled anything: the condition proves both.)
    assert _ids(env, "s") == ids, "B left A's containers alone"
    for found in env.by_component("s").values():
        assert all(c.status == "running" for c in found)
    op_b.stop()
    env.kubectl(
        "patch",
        "kongmaskerstack",
        "s",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":[]}}',
    )
    env.kubectl("delete", "kongmaskerstack", "s", "-n", ns, "--wait=true")
    # A comes back: its start-up sweep removes its own orphans.
    env.operator = start_operator([ns], tmp_path / "op-a2.log", KONGMASKER_OPERATOR_ID=f"op-a-{ns}")
    wait_until(lambda: env.containers("s") == [], timeout=90, what="A to sweep its orphans")


IMMUTABLE = {
    "redis.persistence.volumeName": (
        lambda v: {"redis": {"persistence": {"volumeName": v}}},
        "km-e2e-a",
        "km-e2e-b",
    ),
    "dockerHost.url": (lambda v: {"dockerHost": {"url": v}}, "unix:///a.sock", "unix:///b.sock"),
    "network.mode": (lambda v: {"network": {"mode": v, "name": "n"}}, "bridge", "host"),
}


@pytest.mark.parametrize("field", sorted(IMMUTABLE))
def test_immutable_fields_refuse_set_unset_and_change(
    kubectl: Kubectl, stack_crd: None, field: str
) -> None:
    """Only the kube-apiserver is involved (paused stacks; no operator, no engine)."""
    import json

    make, first, second = IMMUTABLE[field]
    namespace = f"e2e-imm-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    base = {"paused": True, "upstream": {"apiKeySecretRef": {"name": "u"}}}

    def apply(name: str, spec: dict[str, object]) -> subprocess.CompletedProcess[str]:
        body = {
            "apiVersion": "kongmasker.io/v1alpha1",
            "kind": "KongMaskerStack",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        return kubectl("apply", "-f", "-", input=json.dumps(body), check=False)

    try:
        assert apply("unset", base).returncode == 0
        assert apply("set", {**base, **make(first)}).returncode == 0
        transitions = {
            "set": ("unset", {**base, **make(first)}),
            "unset": ("set", base),
            "change": ("set", {**base, **make(second)}),
        }
        for what, (name, spec) in transitions.items():
            out = apply(name, spec)
            assert out.returncode != 0, f"{field}: {what} was accepted"
            assert f"{field} is immutable" in out.stderr, out.stderr
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _secret(env: StackEnv, name: str, key: str, value: str) -> None:
    import base64
    import json

    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": env.namespace},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }
    env.kubectl("apply", "-f", "-", input=json.dumps(body))


def test_config_values_and_secret_values_end_to_end(stack_env: StackEnv) -> None:
    """A password with spaces and quotes works; a line break in a redis.conf value is refused
    naming the field; a Secret value Docker would reject (NUL) is refused by preflight naming
    the Secret key, and the value reaches neither status, Events nor the log. (That Docker's
    own error text echoes such a value, scrubbed by kongmasker/redaction.py, is shown on the
    real engine in tests/integration/isolation/test_config_values.py.)"""
    import json

    env = stack_env
    password = "p a s s \"dq\" 'sq' back\\slash $HOME"
    _secret(env, "pw-quotes", "password", password)
    env.apply("quoted", env.spec("quoted", redis={"passwordSecretRef": {"name": "pw-quotes"}}))

    injected = [{"name": "REDIS_LOGLEVEL", "value": "notice\nmaxmemory-policy allkeys-lru"}]
    env.apply("inject", env.spec("inject", redis={"env": injected}))
    cond = env.wait_condition("inject", "PreflightPassed", "False", reason="InvalidConfigValue")
    assert cond["message"].startswith("spec.redis.env[REDIS_LOGLEVEL]"), cond
    assert "maxmemory-policy" not in cond["message"]
    assert env.containers("inject") == []

    tag = uuid.uuid4().hex[:8]
    leaked = f'nul\x00secret-{tag}\nline-two-{tag} "quoted-{tag}"'
    _secret(env, "up-nul", "api-key", leaked)
    env.apply("leak", env.spec("leak", upstream={"apiKeySecretRef": {"name": "up-nul"}}))
    refused = env.wait_condition("leak", "PreflightPassed", "False", reason="SecretValueInvalid")
    print(f"the leak stack's condition: {refused['message']!r}")
    assert "up-nul" in refused["message"] and "'api-key'" in refused["message"], refused
    assert env.containers("leak") == [], "refused before anything was created"

    env.wait_ready("quoted")
    client = redis.Redis(
        host="127.0.0.1", port=env.ports["quoted"]["redis"], password=password, socket_timeout=5
    )
    assert client.ping()

    status = json.dumps(env.get("leak"))
    events = json.dumps(env.events("leak"))
    assert env.operator is not None
    log = env.operator.log.read_text(errors="replace")
    for piece in (f"secret-{tag}", f"line-two-{tag}", f"quoted-{tag}"):
        assert piece not in status, piece
        assert piece not in events, piece
        assert piece not in log, piece
