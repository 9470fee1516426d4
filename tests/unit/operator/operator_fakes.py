"""In-memory stand-ins for the Runtime and the probes: unit tests exercise core's logic
(plan, gating order, status) without engines. The real ones are covered by the e2e tests."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from kongmasker.adapters.probes import HttpAnswer, ProbeFailed
from kongmasker.adapters.runtime import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    EngineInfo,
    ExecResult,
    RuntimeEvent,
)
from kongmasker.api.vocabulary import LABEL_OPERATOR
from kongmasker.config import DEFAULT_OPERATOR_ID
from kongmasker.errors import RuntimeOperationError

SPEC = {
    "upstream": {"url": "http://127.0.0.1:18090", "apiKeySecretRef": {"name": "up", "key": "k"}},
    "redis": {"passwordSecretRef": {"name": "redis", "key": "password"}},
}
SECRETS = {"REDIS_PASSWORD": "s3cret-redis", "ANTHROPIC_API_KEY": "s3cret-upstream"}


class FakeRuntime:
    """In-memory engine. Owner semantics as strict as adapters/docker.py: what it creates
    carries the operator-id label, listings show only its own, and stop/remove of another
    operator's container or volume is refused."""

    def __init__(self, owner: str = DEFAULT_OPERATOR_ID) -> None:
        self.owner = owner
        self.volumes: dict[str, dict[str, str]] = {}
        self.containers: dict[str, ContainerInfo] = {}
        self.files: dict[tuple[str, str], bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.images: set[str] = set()
        self.busy_ports: set[int] = set()
        self.auto_restart: dict[str, bool] = {}
        self._ids = itertools.count(1)

    def info(self) -> EngineInfo:
        return EngineInfo("20.10.24", "1.41", "/var/lib/docker", 10 * 2**30)

    def image_exists(self, image: str) -> bool:
        return image in self.images

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        return [
            c
            for c in self.containers.values()
            if all(c.labels.get(k) == v for k, v in {**labels, LABEL_OPERATOR: self.owner}.items())
        ]

    def _refuse_foreign(self, labels: Mapping[str, str]) -> None:
        other = labels.get(LABEL_OPERATOR)
        if other and other != self.owner:
            raise RuntimeOperationError(f"belongs to operator {other!r}; left alone")

    def _find(self, name_or_id: str) -> ContainerInfo | None:
        for c in self.containers.values():
            if name_or_id in (c.id, c.name):
                return c
        return None

    def get_container(self, name_or_id: str) -> ContainerInfo | None:
        return self._find(name_or_id)

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        cid = f"c{next(self._ids):04d}"
        if self._find(spec.name) is not None:
            raise RuntimeOperationError(f"Conflict. The container name {spec.name} is in use")
        labels = {**spec.labels, LABEL_OPERATOR: self.owner}
        info = ContainerInfo(cid, spec.name, spec.image, labels, "created")
        self.containers[cid] = info
        for path, content in spec.files.items():
            self.files[(cid, path)] = content
        self.log.append(("create", spec.name))
        return info

    def _set(self, cid: str, status: str) -> None:
        c = self._find(cid)
        assert c is not None
        self.containers[c.id] = replace(c, status=status)

    def start_container(self, container_id: str) -> None:
        self._set(container_id, "running")
        self.log.append(("start", self._find(container_id).name))  # type: ignore[union-attr]

    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        self._refuse_foreign(self._find(container_id).labels)  # type: ignore[union-attr]
        self._set(container_id, "exited")
        self.log.append(("stop", self._find(container_id).name))  # type: ignore[union-attr]

    def remove_container(self, container_id: str, force: bool = False) -> None:
        c = self._find(container_id)
        if c is not None:
            self._refuse_foreign(c.labels)
            del self.containers[c.id]
            self.log.append(("remove", c.name))

    def rename_container(self, container_id: str, new_name: str) -> None:
        c = self._find(container_id)
        assert c is not None
        assert self._find(new_name) is None, f"name {new_name} is taken"
        self.containers[c.id] = replace(c, name=new_name)
        self.log.append(("rename", f"{c.name}->{new_name}"))

    def set_auto_restart(self, container_id: str, enabled: bool) -> None:
        c = self._find(container_id)
        assert c is not None
        self.auto_restart[c.id] = enabled
        self.log.append(("auto-restart" if enabled else "no-auto-restart", c.name))

    def exec(
        self, container_id: str, command: list[str], env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self.log.append(("exec", " ".join(command)))
        script = command[-1]
        if " cp " in f" {script}":  # emulate the staged copy of a config file
            src, dst = script.split(" cp ", 1)[1].split()[:2]
            c = self._find(container_id)
            assert c is not None
            self.files[(c.id, dst)] = self.files[(c.id, src)]
        return ExecResult(0, "")

    def put_file(self, container_id: str, path: str, content: bytes) -> None:
        c = self._find(container_id)
        assert c is not None
        self.files[(c.id, path)] = content
        self.log.append(("put", path))

    def read_file(self, container_id: str, path: str) -> bytes | None:
        c = self._find(container_id)
        return self.files.get((c.id, path)) if c else None

    def stats(self, container_id: str) -> ContainerStats:
        return ContainerStats(0.0, 0, 0, 0, 0)

    def events(
        self, labels: Mapping[str, str], since: float, until: float
    ) -> Iterator[RuntimeEvent]:
        return iter(())

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        self.log.append(("network", name))

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.volumes.setdefault(name, {**labels, LABEL_OPERATOR: self.owner})
        self.log.append(("volume", name))

    def volume_labels(self, name: str) -> Mapping[str, str] | None:
        return self.volumes.get(name)

    def remove_volume(self, name: str) -> None:
        self._refuse_foreign(self.volumes.get(name) or {})
        self.volumes.pop(name, None)
        self.log.append(("rmvolume", name))

    def host_port_free(self, address: str, port: int) -> bool | None:
        return port not in self.busy_ports


class FakeProbes:
    """Healthy iff the component's container runs, unless listed in `sick`."""

    def __init__(self, runtime: FakeRuntime, ports: Mapping[int, str]) -> None:
        self.runtime = runtime
        self.ports = dict(ports)  # port -> component suffix of the container name
        self.sick: set[str] = set()
        self.posts: list[tuple[str, Any]] = []
        self.redis_calls: list[str] = []
        self.lastsave = 100

    def _up(self, port: int) -> bool:
        comp = self.ports.get(port)
        if comp is None or comp in self.sick:
            return False
        return any(
            (c.name.endswith(f"-{comp}") or c.name.endswith(f"-{comp}-surge")) and c.running
            for c in self.runtime.containers.values()
        )

    def http_get(self, url: str) -> HttpAnswer:
        port = int(url.split(":")[2].split("/")[0])
        if not self._up(port):
            return HttpAnswer(0, error="ConnectError: refused")
        if url.endswith("/plugins/enabled"):
            return HttpAnswer(200, {"enabled_plugins": ["aws-masker"]})
        return HttpAnswer(200, {"status": "ok"})

    def http_post(self, url: str, payload: Any) -> HttpAnswer:
        self.posts.append((url, payload))
        return HttpAnswer(201, {})

    def redis(self, host: str, port: int, password: str | None, *command: str) -> Any:
        self.redis_calls.append(command[0])
        if not self._up(port):
            raise ProbeFailed("Redis PING failed: ConnectionError")
        if command[0] == "LASTSAVE":  # redis-py turns the answer into a datetime
            return datetime.datetime.fromtimestamp(self.lastsave)
        if command[0] == "BGSAVE":
            self.lastsave += 1
            return b"Background saving started"
        return True
