"""The stack model: observe what runs, plan(desired, observed) -> actions, apply them in
dependency order with health gates, and stop gracefully in reverse order.

`plan` is pure. `apply` and `stop_stack` talk only to the Runtime protocol and the probes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kongmasker.adapters.probes import ProbeFailed, Probes
from kongmasker.adapters.runtime import ContainerInfo, Runtime
from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import (
    DEPENDS_ON,
    LABEL_COMPONENT,
    LABEL_SPEC_HASH,
    LABEL_STACK_UID,
    START_ORDER,
    STOP_ORDER,
    Component,
)
from kongmasker.config import Settings
from kongmasker.core import health as gates
from kongmasker.core.render import Desired, StackRef, volume_labels
from kongmasker.errors import (
    ConfigApplyFailed,
    HealthGateTimeout,
    RuntimeOperationError,
    Superseded,
)

log = logging.getLogger(__name__)


class ActionKind(StrEnum):
    REMOVE = "Remove"
    """Remove a duplicate, foreign-incarnation or obsolete container."""
    CREATE = "Create"
    RECREATE = "Recreate"
    START = "Start"
    APPLY_CONFIG = "ApplyConfig"
    """Apply a configuration file live (nginx reload, Kong POST /config)."""
    RENAME = "Rename"
    """Finish a graceful handover the operator was interrupted in: `<name>-surge` -> name."""


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    component: Component
    reason: str
    container_id: str = ""
    drift: bool = False
    """Someone changed the live configuration behind the operator's back (a Warning)."""


@dataclass
class Observed:
    """What runs for one component: the container we keep, extras, and its live config."""

    container: ContainerInfo | None = None
    extras: list[ContainerInfo] = field(default_factory=list)
    config: bytes | None = None
    applied_hash: str | None = None
    """Kong: the configuration hash Kong reported right after the operator's last POST /config
    (kept beside the config file in the container)."""
    live_hash: str | None = None
    """Kong: the configuration hash Kong reports now (GET /status); None if it did not answer."""


KONG_HASH_SUFFIX = ".applied-hash"


def kong_live_hash(spec: StackSpec, probes: Probes) -> str | None:
    """The configuration_hash Kong reports on its Admin API (Kong 3.x DB-less, and the local
    gateway), or None when it does not answer."""
    url = f"http://{spec.docker_host.address}:{spec.kong.admin_port}/status"
    answer = probes.http_get(url)
    body = answer.body if answer.ok else None
    value = body.get("configuration_hash") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


def observe(
    runtime: Runtime,
    ref: StackRef,
    desired: Mapping[Component, Desired],
    live_hash: Callable[[], str | None] | None = None,
) -> dict[Component, Observed]:
    """Group the stack's containers by component; read back live config files and, with
    `live_hash`, what Kong says it runs (level-based: a config changed through the Admin API
    is seen even though the file in the container still matches)."""
    mine = runtime.list_containers(ref.name_labels())
    out: dict[Component, Observed] = {c: Observed() for c in START_ORDER}
    for info in mine:
        comp = _component_of(info)
        if comp is None or info.labels.get(LABEL_STACK_UID) != ref.uid:
            # An earlier incarnation of this namespace/name (or unlabelled): an orphan.
            out[comp or Component.REDIS].extras.append(info)
            continue
        out[comp].extras.append(info)
    for comp, obs in out.items():
        obs.container = _pick(obs.extras, ref, desired[comp], comp)
        if obs.container is not None:
            obs.extras.remove(obs.container)
            path = desired[comp].config_path
            if path and obs.container.status != "dead":
                obs.config = runtime.read_file(obs.container.id, path)
            if comp is Component.KONG and path and obs.container.running:
                recorded = runtime.read_file(obs.container.id, path + KONG_HASH_SUFFIX)
                obs.applied_hash = recorded.decode().strip() or None if recorded else None
                obs.live_hash = live_hash() if live_hash is not None else None
    return out


def _component_of(info: ContainerInfo) -> Component | None:
    try:
        return Component(info.labels.get(LABEL_COMPONENT, ""))
    except ValueError:
        return None


def _pick(
    candidates: list[ContainerInfo], ref: StackRef, desired: Desired, comp: Component
) -> ContainerInfo | None:
    """The one container to keep: ours, by name, running and current if possible."""
    ours = [
        c
        for c in candidates
        if c.labels.get(LABEL_STACK_UID) == ref.uid and _component_of(c) == comp
    ]
    if not ours:
        return None
    return max(
        ours,
        key=lambda c: (
            c.name == desired.container.name,
            c.labels.get(LABEL_SPEC_HASH) == desired.spec_hash,
            c.running,
        ),
    )


def plan(
    desired: Mapping[Component, Desired], observed: Mapping[Component, Observed]
) -> list[Action]:
    """Actions that make `observed` match `desired`, in dependency order.

    Removals of extras come first for each component (a duplicate or orphan may hold the
    name or ports the kept container needs). A recreated component makes its live-config
    dependents re-apply their config (nginx re-resolves Kong's address on reload).
    """
    actions: list[Action] = []
    recreated: set[Component] = set()
    for comp in START_ORDER:
        want, have = desired[comp], observed[comp]
        for extra in have.extras:
            actions.append(Action(ActionKind.REMOVE, comp, _extra_reason(extra), extra.id))
        main = _main_action(want, have)
        if main is not None:
            actions.append(main)
            if main.kind in (ActionKind.CREATE, ActionKind.RECREATE):
                recreated.add(comp)
        if main is None or main.kind is ActionKind.START:
            cfg = _config_action(want, have, recreated)
            if cfg is not None:
                actions.append(cfg)
    return actions


def _extra_reason(info: ContainerInfo) -> str:
    return f"remove extra container {info.name} ({info.status})"


def _main_action(want: Desired, have: Observed) -> Action | None:
    comp, c = want.component, have.container
    if c is None:
        return Action(ActionKind.CREATE, comp, "container missing")
    if c.labels.get(LABEL_SPEC_HASH) != want.spec_hash:
        return Action(ActionKind.RECREATE, comp, "container spec changed", c.id)
    if c.image != want.container.image:
        return Action(ActionKind.RECREATE, comp, f"running image {c.image}", c.id)
    if c.name == naming.surge_name(want.container.name) and c.running:
        # The old container is gone, its replacement runs: only the rename was left to do.
        why = f"finish an interrupted handover: rename {c.name}"
        return Action(ActionKind.RENAME, comp, why, c.id)
    if c.name != want.container.name:
        return Action(ActionKind.RECREATE, comp, f"unexpected name {c.name}", c.id)
    if c.status == "dead":
        return Action(ActionKind.RECREATE, comp, "container is dead", c.id)
    if not c.running:
        return Action(ActionKind.START, comp, f"container is {c.status}", c.id)
    return None


def _config_action(want: Desired, have: Observed, recreated: set[Component]) -> Action | None:
    if want.config is None or have.container is None:
        return None
    if have.config != want.config:
        return Action(ActionKind.APPLY_CONFIG, want.component, "configuration changed")
    if any(dep in recreated for dep in DEPENDS_ON[want.component]):
        return Action(ActionKind.APPLY_CONFIG, want.component, "dependency recreated")
    if (
        want.component is Component.KONG
        and have.live_hash
        and have.applied_hash
        and have.live_hash != have.applied_hash
    ):
        why = (
            f"Kong runs configuration {have.live_hash[:12]}, not the rendered one "
            f"({have.applied_hash[:12]}): changed through the Admin API; re-applied"
        )
        return Action(ActionKind.APPLY_CONFIG, want.component, why, drift=True)
    return None


def record_kong_hash(
    runtime: Runtime, observed: Mapping[Component, Observed], desired: Mapping[Component, Desired]
) -> bool:
    """A Kong that started from the rendered file and has no recorded hash yet: record the
    hash it reports now (no POST, so a converged stack stays Ready). Called right after the
    reconcile that created it gated it healthy; True if recorded."""
    want, have = desired[Component.KONG], observed.get(Component.KONG)
    if (
        have is None
        or have.container is None
        or not have.container.running
        or have.applied_hash is not None
        or not have.live_hash
        or want.config_path is None
        or have.config != want.config
    ):
        return False
    runtime.put_file(
        have.container.id, want.config_path + KONG_HASH_SUFFIX, have.live_hash.encode()
    )
    have.applied_hash = have.live_hash
    return True


Progress = Callable[[Component, str], None]
"""Callback(component, message) invoked before each step, for status and logs."""


@dataclass
class Executor:
    """Executes a plan on one stack, health-gated, in dependency order."""

    ref: StackRef
    spec: StackSpec
    runtime: Runtime
    probes: Probes
    secrets: Mapping[str, str]
    settings: Settings
    progress: Progress = lambda comp, msg: None
    superseded: Callable[[], bool] = lambda: False
    """True once the object has changed (new generation, delete): waits stop early."""
    health: dict[Component, gates.Health] = field(default_factory=dict)
    done: list[Action] = field(default_factory=list)

    def apply(self, desired: Mapping[Component, Desired], actions: list[Action]) -> None:
        """Run `actions`; each touched component must pass its gate before the next one.

        Components not touched are probed once: their health goes into the status, but an
        unhealthy one that is not being changed does not block the others, except as the
        dependency of a component that has to (re)start.
        """
        by_comp = {c: [a for a in actions if a.component is c] for c in START_ORDER}
        pending: list[Component] = []
        for comp in START_ORDER:
            todo = by_comp[comp]
            if not todo:
                pending.append(comp)
                continue
            self._check_all(pending)
            pending = []
            if any(a.kind is not ActionKind.REMOVE for a in todo):
                self._await_dependencies(comp)
            for action in todo:
                self.progress(comp, action.reason)
                self._execute(desired[comp], action)
                self.done.append(action)
            self._gate(comp)
        self._check_all(pending)

    def _check_all(self, comps: list[Component]) -> None:
        """Probe untouched components once, side by side: with a hung component, each gate
        that reaches it would otherwise cost one probe timeout in turn, all of it under the
        stack's lock (the health watch waits for it)."""
        if not comps:
            return
        with ThreadPoolExecutor(max_workers=len(comps)) as pool:
            checked = pool.map(self._check, comps)
            self.health.update(zip(comps, checked, strict=True))

    def _check(self, comp: Component) -> gates.Health:
        return gates.check(comp, self.spec, self.probes, self.secrets)

    def _await_dependencies(self, comp: Component) -> None:
        for dep in DEPENDS_ON[comp]:
            if not self.health.get(dep, gates.Health(False, "not checked")).ok:
                self._gate(dep, waiting=comp)

    def _gate(self, comp: Component, waiting: Component | None = None) -> None:
        timeout = self.settings.health.gate_timeout
        self.progress(comp, f"waiting up to {timeout:.0f}s for {comp} to become healthy")
        result = gates.wait_healthy(
            comp,
            self.spec,
            self.probes,
            self.secrets,
            timeout=timeout,
            interval=self.settings.health.poll_interval,
            still_running=lambda: self._running(comp) and not self.superseded(),
        )
        self.health[comp] = result
        if not result.ok and self.superseded():
            raise Superseded(f"{comp}: stopped waiting, the stack changed meanwhile")
        if not result.ok:
            held = f"; {waiting} is held back" if waiting else ""
            raise HealthGateTimeout(comp, f"not healthy: {result.message}{held}")

    def _running(self, comp: Component) -> bool:
        info = self.runtime.get_container(self.ref.container_name(comp))
        return info is not None and info.running

    def _execute(self, want: Desired, action: Action) -> None:
        log.info("%s %s: %s", action.kind, action.component, action.reason)
        rt = self.runtime
        if action.kind is ActionKind.REMOVE:
            rt.remove_container(action.container_id, force=True)
        elif action.kind is ActionKind.CREATE:
            self._create(want)
        elif action.kind is ActionKind.RECREATE:
            self._stop_one(action.component, action.container_id)
            rt.remove_container(action.container_id, force=True)
            self._create(want)
        elif action.kind is ActionKind.START:
            rt.start_container(action.container_id)
        elif action.kind is ActionKind.RENAME:
            rt.rename_container(action.container_id, want.container.name)
        elif action.kind is ActionKind.APPLY_CONFIG:
            self._apply_config(want)

    def _create(self, want: Desired) -> None:
        self._prepare_host(want)
        leftover = self.runtime.get_container(want.container.name)
        if leftover is not None:
            # Ours by name but invisible to observe (e.g. labels edited): free the name.
            self.runtime.remove_container(leftover.id, force=True)
        info = self.runtime.create_container(want.container)
        self.runtime.start_container(info.id)

    def _prepare_host(self, want: Desired) -> None:
        labels = self.ref.name_labels()
        if want.container.network_mode != "host":
            self.runtime.ensure_network(want.container.network_mode, labels)
        for volume in want.container.volumes:
            self.runtime.ensure_volume(volume, volume_labels(self.ref))

    def _stop_one(self, comp: Component, container_id: str) -> None:
        stop_component(
            comp, container_id, self.spec, self.runtime, self.probes, self.secrets, self.settings
        )

    def _apply_config(self, want: Desired) -> None:
        assert want.config is not None and want.config_path is not None
        name = want.container.name
        if want.component is Component.KONG:
            # POST first: if it is refused, the file keeps the old config and the next
            # reconcile retries; a file that matches means the config was accepted.
            url = f"http://{self.spec.docker_host.address}:{self.spec.kong.admin_port}/config"
            answer = self.probes.http_post(url, {"config": want.config.decode()})
            if answer.status not in (200, 201):
                detail = answer.body if answer.status else answer.error
                raise ConfigApplyFailed(f"Kong POST /config: HTTP {answer.status}: {detail}")
            self.runtime.put_file(name, want.config_path, want.config)
            # What Kong calls this config: later reconciles compare its live hash with it.
            applied = kong_live_hash(self.spec, self.probes)
            if applied is not None:
                self.runtime.put_file(name, want.config_path + KONG_HASH_SUFFIX, applied.encode())
        elif want.component is Component.NGINX:
            # Stage, test, then move into place and reload: a config nginx rejects never
            # lands in the real path, so the next reconcile still sees the difference.
            staged = f"{want.config_path}.next"
            self.runtime.put_file(name, staged, want.config)
            script = (
                f"nginx -t -q -c {staged} && cp {staged} {want.config_path} && nginx -s reload"
                f" -c {want.config_path}"
            )
            result = self.runtime.exec(name, ["sh", "-c", script])
            if result.exit_code != 0:
                raise ConfigApplyFailed(f"nginx rejected the config: {result.output.strip()[:300]}")


def stop_component(
    comp: Component,
    container_id: str,
    spec: StackSpec,
    runtime: Runtime,
    probes: Probes,
    secrets: Mapping[str, str],
    settings: Settings,
) -> str:
    """Stop one component gracefully; returns what was done (for Events).

    Redis is asked to BGSAVE first and stopped only after LASTSAVE has advanced, so the
    dataset on the volume is current even if the stop signal were a kill.
    """
    note = ""
    info = runtime.get_container(container_id)
    if info is None or not info.running:
        return "already stopped"
    if comp is Component.REDIS:
        try:
            note = persist_redis(spec, probes, secrets, settings.stop.redis_save_timeout)
        except RuntimeOperationError as exc:
            # Never block a stop forever on a sick Redis: SIGTERM still saves and the AOF
            # holds the last second; the note turns into a Warning Event.
            note = f"WARNING: {exc.message}"
    grace = spec.stop_grace_period_seconds or settings.stop.grace_seconds
    runtime.stop_container(container_id, timeout=grace)
    return f"stopped within {grace}s grace" + (f"; {note}" if note else "")


def persist_redis(
    spec: StackSpec,
    probes: Probes,
    secrets: Mapping[str, str],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """BGSAVE and wait for LASTSAVE to advance; returns a short report."""
    host, port, pw = spec.docker_host.address, spec.redis.port, secrets.get("REDIS_PASSWORD")
    try:
        before = _epoch(probes.redis(host, port, pw, "LASTSAVE"))
        try:
            probes.redis(host, port, pw, "BGSAVE")
        except ProbeFailed as exc:
            # "already in progress" still ends with LASTSAVE advancing.
            if "progress" not in str(exc):
                raise
        deadline = clock() + timeout
        while clock() < deadline:
            after = _epoch(probes.redis(host, port, pw, "LASTSAVE"))
            if after > before:
                return f"Redis saved (LASTSAVE {after})"
            sleep(0.2)
    except ProbeFailed as exc:
        raise RuntimeOperationError(f"Redis could not be persisted before stop: {exc}") from exc
    raise RuntimeOperationError(f"Redis BGSAVE did not complete within {timeout:.0f}s")


def _epoch(value: Any) -> int:
    """LASTSAVE as Unix seconds (redis-py answers a datetime, raw clients an int)."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return int(value)


def stop_stack(
    ref: StackRef,
    spec: StackSpec,
    runtime: Runtime,
    probes: Probes,
    secrets: Mapping[str, str],
    settings: Settings,
    *,
    remove: bool = True,
    progress: Progress = lambda comp, msg: None,
) -> list[str]:
    """Stop Backend -> Nginx -> Kong -> Redis, then remove the containers; returns notes.

    Containers of any incarnation of this namespace/name are included (no orphans left).
    """
    containers = runtime.list_containers(ref.name_labels())
    notes: list[str] = []
    for comp in STOP_ORDER:
        for info in [c for c in containers if _component_of(c) is comp]:
            progress(comp, f"stopping {info.name}")
            note = stop_component(comp, info.id, spec, runtime, probes, secrets, settings)
            notes.append(f"{comp}: {note}")
    if remove:
        for info in containers:
            runtime.remove_container(info.id, force=True)
    return notes
