"""Hostile input the schema cannot judge, refused by the operator before anything is created
(issue 15 item 4): Secret values the consumer cannot take (not UTF-8, NUL, line breaks), CPUs
above the host's, a `dockerHost.address` that is not a host name or IP (no connect is made),
and the CRD's value limits repeated by `StackSpec.validate` for objects stored before them.
Each ends as a condition naming the field or the Secret key, never an exception; delete is
never held up by a bad Secret. What the API server refuses: tests/e2e/test_hostile_specs.py.

The engine is the in-memory FakeRuntime: these checks are decided before Docker is asked."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.operator.operator_fakes import SPEC, FakeProbes, FakeRuntime
from tests.unit.operator.test_exit_budget import Status, running_stack

from kongmasker.adapters.runtime import EngineInfo
from kongmasker.api.spec import SecretKeyRef, StackSpec, is_host_address
from kongmasker.api.vocabulary import Reason
from kongmasker.config import Settings
from kongmasker.core import preflight
from kongmasker.core import reconcile as core
from kongmasker.core.render import StackRef
from kongmasker.errors import InvalidSpec, PreflightFailed

pytestmark = pytest.mark.unit

GOOD = {"redis": b"s3cret-redis", "up": b"s3cret-upstream"}


class BadSecrets:
    """Secrets whose values are given as raw bytes (the API server stores any bytes)."""

    def __init__(self, **values: bytes) -> None:
        self.values = {**GOOD, **values}

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        return {"password": self.values[name], "k": self.values[name]}


class CountingRuntime(FakeRuntime):
    """FakeRuntime with a host of `ncpu` CPUs that records every port probe (a TCP connect
    to dockerHost.address in the real adapter)."""

    def __init__(self, ncpu: int | None = 2) -> None:
        super().__init__()
        self.ncpu = ncpu
        self.probed: list[tuple[str, int]] = []
        self.images |= {f"kongmasker/{i}:dev" for i in ("redis", "gateway", "nginx", "backend")}

    def info(self) -> EngineInfo:
        return EngineInfo("20.10.24", "1.41", "/var/lib/docker", 10 * 2**30, ncpu=self.ncpu)

    def host_port_free(self, address: str, port: int) -> bool | None:
        self.probed.append((address, port))
        return super().host_port_free(address, port)


def _conditions(status: Status) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.patches[-1]["conditions"]}


def _probes(runtime: CountingRuntime, raw: dict[str, Any]) -> FakeProbes:
    try:
        spec = StackSpec.from_dict(raw)
    except InvalidSpec:
        return FakeProbes(runtime, {})  # nothing will be probed
    ports = {spec.redis.port: "redis", spec.kong.status_port: "kong", spec.kong.admin_port: "kong"}
    return FakeProbes(runtime, {**ports, spec.nginx.port: "nginx", spec.backend.port: "backend"})


def _reconcile(
    spec: dict[str, Any], secrets: BadSecrets, runtime: CountingRuntime, settings: Settings
) -> tuple[core.Result, Status]:
    status = Status()
    deps = core.Deps(lambda url, tls: runtime, _probes(runtime, spec), secrets, status, settings)
    obj = core.StackObject(StackRef("default", "demo", "uid-1"), 1, spec, {}, {})
    return core.reconcile(obj, deps), status


BAD_VALUES = [
    pytest.param("redis", b"\xff\xfe\x00pw", "is not UTF-8", id="redis-not-utf8"),
    pytest.param("up", b"key-\xc3\x28-latin", "is not UTF-8", id="apikey-not-utf8"),
    pytest.param("redis", b"hunter\x00two22", "a NUL byte", id="redis-nul"),
    pytest.param("up", b"sk-ant-key\nX-Injected: 1", "a newline", id="apikey-newline"),
    pytest.param("up", b"sk-ant-key\r", "a carriage return", id="apikey-cr"),
    pytest.param("redis", b"password-from-echo\n", "--from-literal", id="redis-trailing-nl"),
]


@pytest.mark.parametrize(("secret", "raw", "said"), BAD_VALUES)
def test_unusable_secret_value_is_a_condition_naming_the_key(
    secret: str, raw: bytes, said: str, settings: Settings
) -> None:
    runtime = CountingRuntime()
    result, status = _reconcile(SPEC, BadSecrets(**{secret: raw}), runtime, settings)
    assert isinstance(result.error, PreflightFailed)
    conds = _conditions(status)
    assert conds["PreflightPassed"]["reason"] == Reason.SECRET_VALUE_INVALID
    key = "password" if secret == "redis" else "k"
    message = conds["PreflightPassed"]["message"]
    assert f"Secret default/{secret} key {key!r}" in message and said in message
    assert conds["Ready"]["status"] == "False"
    assert not [e for e in runtime.log if e[0] in ("create", "start")]
    # Never the value, nor any piece of it that a decode error would quote.
    for piece in raw.split(b"\n") + raw.split(b"\x00"):
        text = piece.decode(errors="replace").strip()
        if len(text) >= 6:
            assert text not in message


def test_valid_secret_values_resolve(spec: StackSpec) -> None:
    values = preflight.resolve_secrets(spec, "default", BadSecrets(redis="pässwörd €".encode()))
    assert values["REDIS_PASSWORD"] == "pässwörd €"


def test_secret_text_never_chains_the_decode_error() -> None:
    """A chained UnicodeDecodeError would put the value's bytes into a logged traceback."""
    with pytest.raises(PreflightFailed) as caught:
        preflight.secret_text("ns", SecretKeyRef("s", "k"), "REDIS_PASSWORD", b"\xffsecret")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe-not-utf8", b"pass\x00word", b"line\nbreak"], ids=["not-utf8", "nul", "nl"]
)
def test_delete_is_not_held_up_by_an_unusable_secret(
    raw: bytes, ref: StackRef, spec: StackSpec, settings: Settings
) -> None:
    runtime = CountingRuntime()
    running_stack(runtime, ref, spec)
    deps = core.Deps(
        lambda url, tls: runtime, _probes(runtime, SPEC), BadSecrets(redis=raw), Status(), settings
    )
    status = {"phase": "Ready", "observedGeneration": 1}
    result = core.delete(core.StackObject(ref, 1, SPEC, status, {}), deps)
    assert result.error is None
    assert runtime.containers == {}  # stopped and removed (SIGTERM still saves Redis)
    assert [e[0] for e in runtime.log].count("stop") == 4


def test_delete_stops_a_stack_stored_before_the_value_limits(
    ref: StackRef, spec: StackSpec, settings: Settings
) -> None:
    """memory 5Mi was accepted by the CRD before issue 15; such a stack is still stopped."""
    runtime = CountingRuntime()
    running_stack(runtime, ref, spec)
    old = {**SPEC, "redis": {**SPEC["redis"], "resources": {"memory": "5Mi"}}}
    with pytest.raises(InvalidSpec):
        StackSpec.from_dict(old)
    deps = core.Deps(
        lambda url, tls: runtime, _probes(runtime, SPEC), BadSecrets(), Status(), settings
    )
    result = core.delete(core.StackObject(ref, 1, old, {"phase": "Ready"}, {}), deps)
    assert result.error is None and runtime.containers == {}


def test_hibernation_is_not_held_up_by_an_unusable_secret(
    ref: StackRef, spec: StackSpec, settings: Settings
) -> None:
    runtime = CountingRuntime()
    running_stack(runtime, ref, spec)
    status = Status()
    deps = core.Deps(
        lambda url, tls: runtime,
        _probes(runtime, SPEC),
        BadSecrets(redis=b"\xff"),
        status,
        settings,
    )
    obj = core.StackObject(ref, 2, {**SPEC, "hibernated": True}, {"phase": "Ready"}, {})
    core.reconcile(obj, deps)  # a condition, not an exception
    assert status.patches, "hibernation reported nothing"


@pytest.mark.parametrize(
    ("cpus", "ncpu", "refused"),
    [
        ({"kong": "3"}, 2, ["spec.kong.resources.cpu=3"]),
        ({"redis": "2001m", "backend": "64"}, 2, ["spec.redis.resources.cpu", "spec.backend"]),
        ({"kong": "2", "nginx": "2000m"}, 2, []),
        ({"kong": "512"}, None, []),  # the engine did not say: Docker judges
    ],
)
def test_cpus_above_the_hosts_are_refused_before_anything_starts(
    cpus: dict[str, str], ncpu: int | None, refused: list[str], settings: Settings
) -> None:
    spec = {**SPEC, **{c: {**SPEC.get(c, {}), "resources": {"cpu": v}} for c, v in cpus.items()}}
    runtime = CountingRuntime(ncpu)
    _, status = _reconcile(spec, BadSecrets(), runtime, settings)
    cond = _conditions(status)["PreflightPassed"]
    if not refused:
        assert cond["status"] == "True", cond
        return
    assert cond["reason"] == Reason.INSUFFICIENT_CPU
    assert all(r in cond["message"] for r in refused) and f"{ncpu} CPU(s)" in cond["message"]
    assert runtime.log == [] and runtime.probed == []


ADDRESSES_REFUSED = [
    "127.0.0.1\n",
    "host\nX-Evil: 1",
    "evil.example.com\r",
    "http://127.0.0.1",
    "127.0.0.1:2375",
    "host name",
    "",
    "a" * 64 + ".example.com",
    "-leading.example.com",
    "under_score",
    "host/path",
    "10.0.0.1\x00",
    "ünïcode.example",
    "a." * 130 + "com",
]


@pytest.mark.parametrize("address", ADDRESSES_REFUSED)
def test_address_that_is_not_a_host_is_a_condition_and_never_connected_to(
    address: str, settings: Settings
) -> None:
    runtime = CountingRuntime()
    spec = {**SPEC, "dockerHost": {"address": address}}
    if address == "":
        spec = {**SPEC, "dockerHost": {"address": " "}}
    result, status = _reconcile(spec, BadSecrets(), runtime, settings)
    assert isinstance(result.error, InvalidSpec)
    cond = _conditions(status)["Ready"]
    assert cond["reason"] == Reason.INVALID_SPEC and "spec.dockerHost.address" in cond["message"]
    assert runtime.probed == [] and runtime.log == []


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "fe80::1%eth0", "docker-host", "a.b-c.example.com", "A1"]
)
def test_host_names_and_ip_literals_are_addresses(address: str) -> None:
    assert is_host_address(address)
    assert not is_host_address(address + "\n")


SPEC_REFUSED = [
    ({"redis": {"image": "redis:7\n"}}, "spec.redis.image"),
    ({"kong": {"image": "kong gateway"}}, "spec.kong.image"),
    ({"nginx": {"image": "x" * 513}}, "spec.nginx.image"),
    ({"backend": {"env": [{"name": "A", "value": "a\x00b"}]}}, "spec.backend.env[A].value"),
    ({"kong": {"env": [{"name": "1BAD", "value": "x"}]}}, "spec.kong.env"),
    ({"kong": {"env": [{"name": "A\nB", "value": "x"}]}}, "spec.kong.env"),
    ({"redis": {"resources": {"memory": "5Mi"}}}, "spec.redis.resources.memory"),
    ({"kong": {"resources": {"memory": "6000000"}}}, "spec.kong.resources.memory"),
    ({"nginx": {"resources": {"cpu": "9m"}}}, "spec.nginx.resources.cpu"),
    ({"backend": {"resources": {"cpu": "0"}}}, "cpu '0' must be positive"),
    ({"redis": {"persistence": {"volumeName": "a"}}}, "spec.redis.persistence.volumeName"),
    ({"redis": {"persistence": {"volumeName": "vol/../x"}}}, "spec.redis.persistence.volumeName"),
    ({"redis": {"persistence": {"volumeName": "v" * 201}}}, "spec.redis.persistence.volumeName"),
    ({"kong": {"plugin": {"config": {"redis_host": "h" * 257}}}}, "spec.kong.plugin.config"),
]


@pytest.mark.parametrize(("patch", "field"), SPEC_REFUSED)
def test_spec_values_docker_would_refuse_name_the_field(patch: dict[str, Any], field: str) -> None:
    raw = {**SPEC, **{k: {**SPEC.get(k, {}), **v} for k, v in patch.items()}}
    with pytest.raises(InvalidSpec) as caught:
        StackSpec.from_dict(raw)
    assert field in caught.value.message


@pytest.mark.parametrize(
    "patch",
    [
        {"redis": {"resources": {"memory": "6Mi", "cpu": "10m"}}},
        {"kong": {"image": "registry.local:5000/team/kong:3.9@sha256:" + "a" * 64}},
        {"redis": {"persistence": {"volumeName": "ab"}}},
        {"backend": {"env": [{"name": "_X", "value": "multi\nline ✓ \U0001f600"}]}},
    ],
)
def test_values_at_the_limits_are_accepted(patch: dict[str, Any]) -> None:
    StackSpec.from_dict({**SPEC, **{k: {**SPEC.get(k, {}), **v} for k, v in patch.items()}})
