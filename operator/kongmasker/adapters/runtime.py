"""The container Runtime boundary: the protocol core programs against, and its value types.

Only adapters/docker.py implements it for real; unit tests use an in-memory fake. Every
method raises errors from kongmasker.errors (never a foreign exception). Issues 5 and 6 build
on the same surface (exec, file copy, stats, events).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container."""

    name: str
    image: str
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    network_mode: str = "host"
    """"host", "none" or the name of a user-defined bridge network."""
    published_ports: Mapping[int, tuple[str, int]] = field(default_factory=dict)
    """container port -> (host address, host port); bridge mode only."""
    volumes: Mapping[str, str] = field(default_factory=dict)
    """volume name -> mount path."""
    binds: Mapping[str, str] = field(default_factory=dict)
    """absolute directory of the engine's host -> mount path (read-write); a missing host
    directory is created by the engine."""
    entrypoint: tuple[str, ...] | None = None
    """Replaces the image's ENTRYPOINT (None: the image's own)."""
    restart: bool = True
    """Restart policy unless-stopped (True) or none (False: throwaway containers)."""
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 20
    nano_cpus: int | None = None
    memory_bytes: int | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    """absolute path -> content, copied in after create and before start."""


@dataclass(frozen=True)
class ContainerInfo:
    """What the runtime reports about one container."""

    id: str
    name: str
    image: str
    labels: Mapping[str, str]
    status: str
    """created, running, paused, restarting, removing, exited or dead."""
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0
    health: str = ""
    """Docker HEALTHCHECK status if the image has one (starting, healthy, unhealthy)."""
    exit_code: int = 0

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting")


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str


@dataclass(frozen=True)
class RuntimeEvent:
    """One engine event about a container (action: start, die, stop, destroy, ...)."""

    action: str
    container_id: str
    labels: Mapping[str, str]
    time: float
    requested: bool = False
    """This Runtime was asked to stop, kill or remove the container shortly before: the event
    is the operator's own doing, not the container failing."""
    exit_code: int | None = None
    """For `die`: the exit code the engine reported."""


@dataclass(frozen=True)
class ContainerStats:
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    # Added for issue 5 (core/resources.py); defaults keep older callers and fakes valid.
    block_read_bytes: int | None = None
    """Bytes read from block devices; None when the engine reports no block I/O."""
    block_write_bytes: int | None = None
    memory_cache_bytes: int = 0
    """Inactive file cache inside memory_bytes (reclaimable; `docker stats` subtracts it)."""
    online_cpus: int = 0
    network_reported: bool = True
    """False when the engine has no per-container network counters (host networking)."""


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    data_root: str
    free_disk_bytes: int | None
    """Free space of the data root if it can be measured from here, else None."""
    ncpu: int | None = None
    """CPUs the engine reports (`docker info` NCPU); None if unknown."""


class Runtime(Protocol):
    """A container engine on one host."""

    owner: str | None
    """Identity of the operator instance this client acts for (label kongmasker.io/operator-id
    on what it creates; listings and removals are limited to it). None for an observer (the
    kubectl plugin): it reads every operator's objects and changes none."""

    def info(self) -> EngineInfo:
        """Version and disk facts; raises RuntimeUnavailable if the engine does not answer."""
        ...

    def image_exists(self, image: str) -> bool: ...

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of `labels`."""
        ...

    def get_container(self, name_or_id: str) -> ContainerInfo | None: ...

    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        """Create (not start) a container and copy `spec.files` into it."""
        ...

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        """Stop with the container's own stop signal; kill after `timeout` seconds."""
        ...

    def remove_container(self, container_id: str, force: bool = False) -> None: ...

    def rename_container(self, container_id: str, new_name: str) -> None:
        """Give an existing container another name (running or not)."""
        ...

    def set_auto_restart(self, container_id: str, enabled: bool) -> None:
        """Switch the engine's own restart-on-exit for an existing container on or off."""
        ...

    def exec(
        self, container_id: str, command: list[str], env: Mapping[str, str] | None = None
    ) -> ExecResult: ...

    def put_file(self, container_id: str, path: str, content: bytes) -> None: ...

    def read_file(self, container_id: str, path: str) -> bytes | None:
        """A file's content, or None if it does not exist."""
        ...

    def stats(self, container_id: str) -> ContainerStats: ...

    def events(
        self, labels: Mapping[str, str], since: float, until: float
    ) -> Iterator[RuntimeEvent]:
        """Container events in [since, until); blocks until `until` when it is in the future."""
        ...

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None: ...

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None: ...

    def volume_labels(self, name: str) -> Mapping[str, str] | None:
        """The labels of a volume, or None if it does not exist."""
        ...

    def remove_volume(self, name: str) -> None: ...

    def host_port_free(self, address: str, port: int) -> bool | None:
        """True if nothing listens on address:port of the engine's host, None if unknowable."""
        ...
