"""Fixtures of the backup integration tests: the real Docker runtime and a stack's Redis
container (the operator's own container spec, rendered from a KongMaskerStack spec) with a
password, AOF on and its named volume, as the operator runs it. Everything created here is
removed afterwards, including volumes and throwaway containers the code under test made."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component
from kongmasker.core.backup.create import StackTarget
from kongmasker.core.backup.rediscli import LABEL_SCRATCH
from kongmasker.core.render import StackRef, render_stack

PASSWORD = "backup-test-pw-7f3a"


@pytest.fixture(scope="session")
def redis_image(docker_host: str) -> str:
    """Only the Redis image is needed here: build just that one (unchanged: no rebuild)."""
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-images.sh"), "redis"], check=True)
    return "kongmasker/redis:dev"


@pytest.fixture(scope="session")
def runtime(docker_host: str, redis_image: str) -> Iterator[DockerRuntime]:
    rt = DockerRuntime.connect(docker_host)
    yield rt
    # Throwaway containers must never outlive the code that made them.
    leftovers = [
        info
        for purpose in ("count", "restore", "store")
        for info in rt.list_containers({LABEL_SCRATCH: purpose})
    ]
    for info in leftovers:
        rt.remove_container(info.id, force=True)
    rt.close()
    assert not leftovers, f"throwaway containers left behind: {[c.name for c in leftovers]}"


@dataclass
class RedisStack:
    """A stack's Redis as the operator creates it, plus a client for the test."""

    runtime: DockerRuntime
    target: StackTarget
    client: redis.Redis
    secrets: dict[str, str]

    def start(self) -> None:
        desired = render_stack(self.target.ref, self.target.spec, self.secrets, 20)
        spec = desired[Component.REDIS].container
        self.runtime.ensure_volume(self.target.volume, self.target.ref.name_labels())
        info = self.runtime.create_container(spec)
        self.runtime.start_container(info.id)
        wait_until(self.client.ping, timeout=30, what="Redis to answer PING")

    def remove(self) -> None:
        self.client.close()
        self.runtime.remove_container(self.target.redis_container, force=True)
        self.runtime.remove_volume(self.target.volume)


def make_stack(runtime: DockerRuntime, name: str = "") -> RedisStack:
    ns = f"bk-{uuid.uuid4().hex[:8]}"
    port = free_port()
    spec = StackSpec.from_dict(
        {
            "upstream": {"url": "http://127.0.0.1:9"},
            "redis": {"port": port, "passwordSecretRef": {"name": "redis", "key": "password"}},
        }
    )
    ref = StackRef(ns, name or "demo", str(uuid.uuid4()))
    client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=30)
    stack = RedisStack(runtime, StackTarget(ref, spec, 1), client, {"REDIS_PASSWORD": PASSWORD})
    stack.start()
    return stack


@pytest.fixture
def redis_stack(runtime: DockerRuntime) -> Iterator[RedisStack]:
    stack = make_stack(runtime)
    yield stack
    stack.remove()
