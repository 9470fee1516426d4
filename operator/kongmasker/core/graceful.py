"""Graceful restart (spec.restartStrategy: Graceful): every component restarted, one after the
other in start order, each health-gated before the next, and no request failing meanwhile.

* Redis is restarted in place (same container, same volume): BGSAVE and LASTSAVE advancing,
  stop, start, gate. The gateway rides out the gap (its Redis operations retry for
  KONG_REDIS_RETRY_SECONDS before fail-secure answers 503).
* Kong, Nginx and Backend are handed over on the same host ports: a second container
  `<name>-surge` from the same rendered spec (same labels and spec hash) binds the ports next to
  the old one (SO_REUSEPORT; Kong's listeners are rendered with `reuseport`), must show that
  it is up itself (the data plane's ready file /tmp/kongmasker-ready, or `kong health` in a
  real Kong image, which writes no such file; nginx's pid file, written after its sockets are
  open) and pass the normal gate; then the old one is stopped with its own signal (it closes
  its listeners and finishes what is in flight), removed, and the new one renamed to the
  canonical name.

A replacement that does not get ready is removed and the old container keeps serving
(GracefulRestartFailed). Connections still in the old listener's accept queue are migrated
by the kernel only with `net.ipv4.tcp_migrate_req=1`; `migrate_note` reports it.

Host network mode only: in bridge mode a published host port cannot be bound twice.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kongmasker.adapters.probes import Probes
from kongmasker.adapters.runtime import ContainerInfo, Runtime
from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import START_ORDER, Component
from kongmasker.config import Settings
from kongmasker.core import health as gates
from kongmasker.core.render import Desired, StackRef
from kongmasker.core.stack import Observed, Progress, stop_component
from kongmasker.errors import (
    GracefulRestartFailed,
    HealthGateTimeout,
    RuntimeOperationError,
    Superseded,
)

log = logging.getLogger(__name__)

SURGE_SUFFIX = naming.SURGE_SUFFIX
DATAPLANE_READY_FILE = "/tmp/kongmasker-ready"
READY_FILES: dict[Component, str] = {
    Component.KONG: DATAPLANE_READY_FILE,
    Component.NGINX: "/run/nginx.pid",
    Component.BACKEND: DATAPLANE_READY_FILE,
}
"""The file a new process writes once its own listeners are bound (and it is configured)."""
MIGRATE_SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req"
SKIPPED = "not running"
"""Start of the note of a component that was not running (the reconcile creates/starts it)."""


surge_name = naming.surge_name


def supported(spec: StackSpec) -> str | None:
    """None if a graceful restart can run for this spec, else why not."""
    if spec.network.mode != "host":
        return (
            f"network mode {spec.network.mode}: a published port cannot be bound twice, "
            "restarting with Recreate instead"
        )
    return None


@dataclass
class Handover:
    """Runs one graceful restart; `notes` collects one line per component (for Events)."""

    ref: StackRef
    spec: StackSpec
    runtime: Runtime
    probes: Probes
    secrets: Mapping[str, str]
    settings: Settings
    progress: Progress = lambda comp, msg: None
    superseded: Callable[[], bool] = lambda: False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    notes: list[tuple[Component, str]] = field(default_factory=list)

    def run(
        self, desired: Mapping[Component, Desired], observed: Mapping[Component, Observed]
    ) -> None:
        """Restart every running component in start order. Components that do not run are
        left to the reconcile that follows (it creates or starts them)."""
        for comp in START_ORDER:
            current = observed[comp].container
            if current is None or not current.running:
                self.notes.append((comp, f"{SKIPPED}: left to the reconcile"))
                continue
            if comp is Component.REDIS:
                self._restart_in_place(comp, current)
            else:
                self._hand_over(comp, desired[comp], current)

    # -- Redis ------------------------------------------------------------------------------

    def _restart_in_place(self, comp: Component, current: ContainerInfo) -> None:
        started = self.clock()
        self.progress(comp, f"graceful restart: saving and restarting {current.name} in place")
        stopped = stop_component(
            comp, current.id, self.spec, self.runtime, self.probes, self.secrets, self.settings
        )
        self.runtime.start_container(current.id)
        result = self._wait_gate(comp, current.id)
        if not result.ok:
            if self.superseded():
                raise Superseded(f"{comp}: stopped waiting, the stack changed meanwhile")
            raise HealthGateTimeout(comp, f"not healthy after its restart: {result.message}")
        took = self.clock() - started
        self.notes.append((comp, f"restarted in place in {took:.1f}s ({stopped})"))

    # -- Kong, Nginx, Backend ---------------------------------------------------------------

    def _hand_over(self, comp: Component, want: Desired, old: ContainerInfo) -> None:
        started = self.clock()
        name = surge_name(want.container.name)
        leftover = self.runtime.get_container(name)
        if leftover is not None:  # from an interrupted handover
            self.runtime.remove_container(leftover.id, force=True)
        self.progress(comp, f"graceful restart: starting {name} next to {old.name}")
        new = self.runtime.create_container(dataclasses.replace(want.container, name=name))
        try:
            self.runtime.start_container(new.id)
            self._await_ready(comp, new.id)
        except BaseException:
            self.runtime.remove_container(new.id, force=True)
            raise
        self.progress(comp, f"graceful restart: {name} serves; draining {old.name}")
        stopped = stop_component(
            comp, old.id, self.spec, self.runtime, self.probes, self.secrets, self.settings
        )
        self.runtime.remove_container(old.id, force=True)
        self.runtime.rename_container(new.id, want.container.name)
        took = self.clock() - started
        self.notes.append(
            (comp, f"handed over to {new.id[:12]} in {took:.1f}s (old {old.id[:12]} {stopped})")
        )

    def _await_ready(self, comp: Component, container_id: str) -> None:
        """The new container's own ready signal, then the normal gate over the shared ports."""
        path = READY_FILES[comp]
        deadline = self.clock() + self.settings.health.gate_timeout
        while not self._own_ready(comp, container_id, path):
            why = self._give_up(container_id, deadline)
            if why is not None:
                raise self._failed(comp, f"no {path} in the new container ({why})")
            self.sleep(self.settings.health.poll_interval)
        result = self._wait_gate(comp, container_id)
        if not result.ok:
            raise self._failed(comp, f"the new container did not pass its gate: {result.message}")

    def _own_ready(self, comp: Component, container_id: str, path: str) -> bool:
        """This very container is up: its ready file (the local gateway writes one) or, for a
        real Kong image that has none, `kong health` inside it (its nginx master and workers
        run; the declarative config is loaded before they start)."""
        if self.runtime.read_file(container_id, path) is not None:
            return True
        if comp is not Component.KONG:
            return False
        try:
            return self.runtime.exec(container_id, ["kong", "health"]).exit_code == 0
        except RuntimeOperationError:
            return False

    def _give_up(self, container_id: str, deadline: float) -> str | None:
        if self.superseded():
            return "the stack changed meanwhile"
        if not self._running(container_id):
            return "it exited"
        if self.clock() >= deadline:
            return f"not within {self.settings.health.gate_timeout:.0f}s"
        return None

    def _failed(self, comp: Component, message: str) -> Exception:
        if self.superseded():
            return Superseded(f"{comp}: graceful restart stopped, the stack changed meanwhile")
        return GracefulRestartFailed(
            comp, f"{message}; removed it, the old container keeps serving"
        )

    # -- common -----------------------------------------------------------------------------

    def _wait_gate(self, comp: Component, container_id: str) -> gates.Health:
        return gates.wait_healthy(
            comp,
            self.spec,
            self.probes,
            self.secrets,
            timeout=self.settings.health.gate_timeout,
            interval=self.settings.health.poll_interval,
            still_running=lambda: self._running(container_id) and not self.superseded(),
            clock=self.clock,
            sleep=self.sleep,
        )

    def _running(self, container_id: str) -> bool:
        info = self.runtime.get_container(container_id)
        return info is not None and info.running


def migrate_note(runtime: Runtime, observed: Mapping[Component, Observed]) -> str:
    """Whether the kernel migrates queued connections off a closing listener
    (net.ipv4.tcp_migrate_req, read inside a host-network container of the stack)."""
    running = [o.container for o in observed.values() if o.container and o.container.running]
    if not running:
        return "tcp_migrate_req unknown (nothing runs)"
    try:
        result = runtime.exec(running[0].id, ["cat", MIGRATE_SYSCTL])
    except RuntimeOperationError as exc:
        return f"tcp_migrate_req unknown ({exc.message})"
    value = result.output.strip()
    if result.exit_code != 0 or value not in ("0", "1"):
        return "tcp_migrate_req unknown (kernel older than 5.14?): a few connections may be reset"
    if value == "0":
        return (
            "net.ipv4.tcp_migrate_req=0 on the Docker host: a few connections queued on an old "
            "listener may be reset (sysctl -w net.ipv4.tcp_migrate_req=1)"
        )
    return "net.ipv4.tcp_migrate_req=1"
