"""Values written into redis.conf, and Secret values in Docker's error texts, on the real
engine with the real Redis image (issue 11).

* a password with spaces, quotes, a backslash and `$` works (the image quotes it);
* a line break in REDIS_LOGLEVEL cannot add a directive: the container refuses to start and
  says which variable (the operator refuses the value before that; this is the image's own
  second line);
* Docker rejecting an env value (a NUL byte in a Secret) echoes it in its error text; the
  operator's error message has it scrubbed (kongmasker/redaction.py).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker import redaction
from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.errors import KongMaskerError

pytestmark = pytest.mark.integration
IMAGE = "kongmasker/redis:dev"
LABELS = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": "config-values"}


@pytest.fixture(scope="module")
def runtime(docker_host: str) -> Iterator[DockerRuntime]:
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-images.sh"), "redis"], check=True)
    rt = DockerRuntime.connect(docker_host)
    yield rt
    for info in rt.list_containers(LABELS):
        rt.remove_container(info.id, force=True)
    rt.close()


def _redis(runtime: DockerRuntime, env: dict[str, str]) -> tuple[str, int]:
    port = free_port()
    spec = ContainerSpec(
        name=f"km-test-conf-{uuid.uuid4().hex[:8]}",
        image=IMAGE,
        env={"REDIS_PORT": str(port), "REDIS_BIND": "127.0.0.1", **env},
        labels=LABELS,
        restart=False,
    )
    info = runtime.create_container(spec)
    runtime.start_container(info.id)
    return info.id, port


def test_a_password_with_spaces_and_quotes_works(runtime: DockerRuntime) -> None:
    password = "p a s s \"dq\" 'sq' back\\slash $HOME `x`"
    cid, port = _redis(runtime, {"REDIS_PASSWORD": password})
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
    assert wait_until(client.ping, timeout=60, what="Redis with a quoted password")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="p", socket_timeout=5).ping()
    runtime.remove_container(cid, force=True)


@pytest.mark.parametrize(
    "injected", ["notice\nmaxmemory-policy allkeys-lru", 'notice\nrename-command FLUSHALL ""']
)
def test_a_line_break_cannot_add_a_directive(runtime: DockerRuntime, injected: str) -> None:
    cid, _ = _redis(runtime, {"REDIS_LOGLEVEL": injected, "REDIS_PASSWORD": "pw"})

    def exited() -> bool:
        info = runtime.get_container(cid)
        return info is not None and info.status == "exited"

    wait_until(exited, timeout=60, what="the container to refuse the value")
    info = runtime.get_container(cid)
    assert info is not None and info.exit_code == 64
    logs = subprocess.run(
        ["docker", "logs", cid], capture_output=True, text=True, check=True
    ).stderr
    assert "REDIS_LOGLEVEL contains a line break" in logs
    runtime.remove_container(cid, force=True)


def test_docker_echoing_a_secret_with_nul_is_scrubbed(runtime: DockerRuntime) -> None:
    secret = f'nul\x00inside-{uuid.uuid4().hex[:8]}\nand-a-line "quoted"'
    redaction.remember(secret)
    spec = ContainerSpec(
        name=f"km-test-conf-{uuid.uuid4().hex[:8]}",
        image=IMAGE,
        env={"REDIS_PASSWORD": secret},
        labels=LABELS,
        restart=False,
    )
    with pytest.raises(KongMaskerError) as err:  # refused at create or at start
        runtime.start_container(runtime.create_container(spec).id)
    message = err.value.message
    print(f"Docker's error, as the operator reports it: {message!r}")
    assert "inside-" not in message and "and-a-line" not in message and "quoted" not in message
    assert secret not in message
