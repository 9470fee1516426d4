"""Resource sampling: CPU, memory, block I/O and network I/O per container, and free disk of the
Docker host, taken in a worker thread so the reconcile loop never waits on Docker's stats API
(one-shot stats take a second or two per container: the engine samples CPU twice).

    sampler = ResourceSampler(interval=30)
    sampler.watch("default", "demo", runtime, selector=ref.stack_labels(),
                  cpu_limits={Component.KONG: spec.kong.resources.nano_cpus})
    sampler.start()
    ...
    usage = sampler.latest("default", "demo")      # never blocks
    sampler.stop()

Each round publishes to the `kongmasker_container_*` and `kongmasker_docker_host_free_disk_bytes`
metrics. Network counters only exist where the network mode gives a container its own
interfaces (bridge); with host networking they are left out rather than reported as zero, and
so is block I/O when the engine reports none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kongmasker import metrics
from kongmasker.adapters.runtime import ContainerStats, Runtime
from kongmasker.api.vocabulary import LABEL_COMPONENT, Component
from kongmasker.errors import KongMaskerError

__all__ = ["ContainerUsage", "ResourceSampler", "StackUsage", "publish", "sample", "usage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContainerUsage:
    """One container's resource use, in base units."""

    component: Component
    cpu_cores: float
    """CPU in use, in cores (1.0 = one full core)."""
    cpu_ratio: float
    """cpu_cores over what the container may use: its CPU limit, else the host's CPUs."""
    memory_bytes: int
    """Working set: usage minus reclaimable file cache, as `docker stats` shows it."""
    memory_limit_bytes: int
    block_read_bytes: int | None
    block_write_bytes: int | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None


@dataclass(frozen=True)
class StackUsage:
    """One sampling round of one stack."""

    namespace: str
    name: str
    at: float
    """Wall-clock time of the round (seconds since the epoch)."""
    containers: dict[Component, ContainerUsage] = field(default_factory=dict)
    free_disk_bytes: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """What could not be sampled (a component, or "disk"), and why."""


def usage(
    component: Component, stats: ContainerStats, cpu_limit_nano: int | None
) -> ContainerUsage:
    """Pure conversion of the engine's stats into `ContainerUsage`."""
    cores = stats.cpu_percent / 100.0
    capacity = cpu_limit_nano / 1e9 if cpu_limit_nano else float(stats.online_cpus or 1)
    networked = stats.network_reported
    return ContainerUsage(
        component=component,
        cpu_cores=cores,
        cpu_ratio=cores / capacity if capacity > 0 else 0.0,
        memory_bytes=max(stats.memory_bytes - stats.memory_cache_bytes, 0),
        memory_limit_bytes=stats.memory_limit_bytes,
        block_read_bytes=stats.block_read_bytes,
        block_write_bytes=stats.block_write_bytes,
        network_rx_bytes=stats.network_rx_bytes if networked else None,
        network_tx_bytes=stats.network_tx_bytes if networked else None,
    )


def sample(
    runtime: Runtime,
    namespace: str,
    name: str,
    selector: Mapping[str, str],
    cpu_limits: Mapping[Component, int | None] | None = None,
    *,
    pool: ThreadPoolExecutor | None = None,
) -> StackUsage:
    """One blocking round over the running containers matching `selector` (run it off the
    event loop). Engine errors become entries of `errors`, never exceptions."""
    limits = cpu_limits or {}
    errors: dict[str, str] = {}
    try:
        found = [c for c in runtime.list_containers(selector) if c.running]
    except KongMaskerError as exc:
        return StackUsage(namespace, name, time.time(), errors={"containers": exc.message})
    targets = {
        Component(c.labels[LABEL_COMPONENT]): c.id
        for c in found
        if c.labels.get(LABEL_COMPONENT) in {str(x) for x in Component}
    }

    def one(item: tuple[Component, str]) -> tuple[Component, ContainerUsage | str]:
        comp, cid = item
        try:
            return comp, usage(comp, runtime.stats(cid), limits.get(comp))
        except KongMaskerError as exc:
            return comp, exc.message

    results = list(pool.map(one, targets.items())) if pool else [one(t) for t in targets.items()]
    containers: dict[Component, ContainerUsage] = {}
    for comp, got in results:
        if isinstance(got, str):
            errors[str(comp)] = got
        else:
            containers[comp] = got
    free: int | None = None
    try:
        free = runtime.info().free_disk_bytes
    except KongMaskerError as exc:
        errors["disk"] = exc.message
    return StackUsage(namespace, name, time.time(), containers, free, errors)


def publish(result: StackUsage, mirror: metrics.CumulativeMirror) -> None:
    """Set the resource metrics of one round (cumulative byte counts via `mirror`)."""
    stack = (result.namespace, result.name)
    for comp, u in result.containers.items():
        labels = (*stack, str(comp))
        metrics.CONTAINER_CPU_RATIO.labels(*labels).set(u.cpu_ratio)
        metrics.CONTAINER_MEMORY_BYTES.labels(*labels).set(u.memory_bytes)
        metrics.CONTAINER_MEMORY_LIMIT_BYTES.labels(*labels).set(u.memory_limit_bytes)
        for counter, value in (
            (metrics.CONTAINER_BLOCK_READ_BYTES, u.block_read_bytes),
            (metrics.CONTAINER_BLOCK_WRITE_BYTES, u.block_write_bytes),
            (metrics.CONTAINER_NETWORK_RECEIVE_BYTES, u.network_rx_bytes),
            (metrics.CONTAINER_NETWORK_TRANSMIT_BYTES, u.network_tx_bytes),
        ):
            if value is not None:
                mirror.update(counter, labels, float(value))
    if result.free_disk_bytes is not None:
        metrics.DOCKER_FREE_DISK_BYTES.labels(*stack).set(result.free_disk_bytes)


@dataclass
class _Watch:
    runtime: Runtime
    selector: dict[str, str]
    cpu_limits: dict[Component, int | None]


class ResourceSampler:
    """Samples every watched stack each `interval` seconds in one daemon thread; a small pool
    samples one stack's containers in parallel. `latest()` reads the last round, never blocks
    on Docker."""

    def __init__(
        self,
        interval: float = 30.0,
        *,
        workers: int = 4,
        on_round: Callable[[StackUsage], None] | None = None,
    ) -> None:
        self.interval = interval
        self._on_round = on_round
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._latest: dict[tuple[str, str], StackUsage] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="km-stats")
        self._mirror = metrics.CumulativeMirror()

    def watch(
        self,
        namespace: str,
        name: str,
        runtime: Runtime,
        selector: Mapping[str, str],
        cpu_limits: Mapping[Component, int | None] | None = None,
    ) -> None:
        """Start (or update) sampling of one stack."""
        with self._lock:
            self._watches[(namespace, name)] = _Watch(
                runtime, dict(selector), dict(cpu_limits or {})
            )

    def unwatch(self, namespace: str, name: str) -> None:
        """Stop sampling a stack and drop what was kept about it."""
        with self._lock:
            self._watches.pop((namespace, name), None)
            self._latest.pop((namespace, name), None)
        self._mirror.forget((namespace, name))

    def latest(self, namespace: str, name: str) -> StackUsage | None:
        with self._lock:
            return self._latest.get((namespace, name))

    def sample_now(self, namespace: str, name: str) -> StackUsage:
        """Sample one stack in the caller's thread (tests, `kubectl`-style one-offs)."""
        with self._lock:
            w = self._watches[(namespace, name)]
        result = sample(w.runtime, namespace, name, w.selector, w.cpu_limits, pool=self._pool)
        self._store(result)
        return result

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="kongmasker-resources", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sampling; wait up to `timeout` seconds for a round in progress (0: do not wait,
        the daemon thread ends after its round)."""
        self._stop.set()
        if self._thread is not None and timeout > 0:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                keys = list(self._watches)
            for namespace, name in keys:
                if self._stop.is_set():
                    return
                try:
                    self.sample_now(namespace, name)
                except KeyError:
                    continue  # unwatched meanwhile
                except Exception:
                    log.exception("resource sampling of %s/%s failed", namespace, name)
            self._stop.wait(self.interval)

    def _store(self, result: StackUsage) -> None:
        key = (result.namespace, result.name)
        with self._lock:
            if key not in self._watches:
                return
            self._latest[key] = result
        publish(result, self._mirror)
        if self._on_round is not None:
            self._on_round(result)
