"""One reconcile of a stack as a straight sequence of steps, and the graceful delete.

    parse spec -> paused? -> hibernated? (stop all in reverse, remove; keep the volume)
      -> preflight (engine, Secrets, images, ports, disk)
      -> restart requested? (stop all in reverse, remove) -> observe -> plan
      -> apply health-gated in dependency order -> verify -> one status patch

Every step either continues or ends the reconcile with a status that says why; the error
(if any) is returned for the handler to turn into a retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kongmasker import metrics
from kongmasker.adapters.kube import SecretReader, StatusWriter
from kongmasker.adapters.probes import Probes
from kongmasker.adapters.runtime import Runtime
from kongmasker.api.spec import StackSpec
from kongmasker.api.status import ComponentStatus
from kongmasker.api.vocabulary import (
    RESTART_ANNOTATION,
    START_ORDER,
    Component,
    ComponentState,
    ConditionType,
    Phase,
    Reason,
)
from kongmasker.config import Settings
from kongmasker.core import graceful, preflight
from kongmasker.core import status as st
from kongmasker.core.confvalues import check_redis_env
from kongmasker.core.health import Health
from kongmasker.core.migrate import migrate_legacy
from kongmasker.core.recovery import dependents
from kongmasker.core.render import StackRef, endpoints, render_stack
from kongmasker.core.stack import (
    Action,
    ActionKind,
    Executor,
    Observed,
    kong_live_hash,
    observe,
    plan,
    record_kong_hash,
    stop_component,
    stop_stack,
)
from kongmasker.errors import (
    GracefulRestartFailed,
    HealthGateTimeout,
    InvalidSpec,
    KongMaskerError,
    NotFound,
    PreflightFailed,
    Superseded,
    TransientError,
)

log = logging.getLogger(__name__)


class RuntimeFactory(Protocol):
    def __call__(self, url: str, tls_files: Mapping[str, bytes] | None) -> Runtime: ...


class RestartGuard(Protocol):
    def admit(self, uid: str, component: Component) -> tuple[str, str] | None:
        """None to start the exited container (counted as a restart), else (reason,
        message) saying why not."""
        ...


@dataclass
class Deps:
    """What a reconcile needs from the outside, built once at start-up."""

    runtime_for: RuntimeFactory
    probes: Probes
    secrets: SecretReader
    status: StatusWriter
    settings: Settings
    restarts: RestartGuard | None = None
    """The health watch's restart budget (core/monitor.py Monitors); None: no budget."""


@dataclass(frozen=True)
class StackObject:
    """The parts of the KongMaskerStack object a reconcile reads."""

    ref: StackRef
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]


@dataclass
class Result:
    status: dict[str, Any] | None = None
    events: list[st.EventNote] = field(default_factory=list)
    error: KongMaskerError | None = None
    actions: list[Action] = field(default_factory=list)


def reconcile(obj: StackObject, deps: Deps) -> Result:
    """Make the Docker host match the spec; always ends with a status patch."""
    started = time.monotonic()
    result = _reconcile(obj, deps)
    ns, name = obj.ref.namespace, obj.ref.name
    outcome = "ok" if result.error is None else type(result.error).__name__
    metrics.RECONCILES.labels(ns, name, outcome).inc()
    metrics.RECONCILE_SECONDS.labels(ns, name).observe(time.monotonic() - started)
    return result


def _reconcile(obj: StackObject, deps: Deps) -> Result:
    ref = obj.ref
    try:
        spec = StackSpec.from_dict(obj.spec)
    except InvalidSpec as exc:
        verdicts = st.preflight_verdicts(Reason.INVALID_SPEC, exc.message)
        return _finish(obj, deps, verdicts, {}, {}, {}, error=exc)
    if spec.paused:
        verdicts = st.paused_verdicts(obj.status.get("conditions") or [])
        return _finish(obj, deps, verdicts, {}, {}, endpoints(spec), keep_components=True)
    if spec.hibernated:
        return _hibernate(obj, deps, spec)

    runtime: Runtime | None = None
    observed: dict[Component, Observed] = {}
    try:
        runtime = stack_runtime(spec, ref, deps)
        engine = preflight.engine(runtime, spec.docker_host.url)
        preflight.cpus(engine, spec)
        secrets = preflight.resolve_secrets(spec, ref.namespace, deps.secrets)
        grace = deps.settings.stop.grace_seconds
        desired = render_stack(ref, spec, secrets, grace)
        check_redis_env(desired[Component.REDIS].container.env, dict(spec.redis.env))
        preflight.images(runtime, desired)
        preflight.volume(runtime, ref, spec)
        migrated = migrate_legacy(runtime, ref, spec, _stopper(runtime, spec, secrets, deps))
        observed = observe(runtime, ref, desired, _kong_hash(spec, deps))
        preflight.ports(runtime, spec, observed)
        disk_note = preflight.disk(engine, deps.settings)
    except PreflightFailed as exc:
        verdicts = st.preflight_verdicts(exc.reason, exc.message)
        comps = st.components(observed, {}) if observed else {}
        return _finish(obj, deps, verdicts, comps, {}, endpoints(spec), error=exc)
    except TransientError as exc:
        verdicts = st.degraded_verdicts(Reason.DOCKER_ERROR, exc.message, "preflight incomplete")
        return _finish(obj, deps, verdicts, {}, {}, endpoints(spec), error=exc)
    assert runtime is not None
    note = f"Docker {engine.version}; Secrets present; images present; ports free; {disk_note}"
    run = _Run(obj, deps, spec, runtime, secrets, observed)
    if migrated:
        run.events.append(
            st.EventNote(Reason.MIGRATED, "moved to collision-free names: " + "; ".join(migrated))
        )
    return run.converge(desired, note, engine.version)


def _stopper(
    runtime: Runtime, spec: StackSpec, secrets: Mapping[str, str], deps: Deps
) -> Callable[[Component, str], str]:
    def stop(comp: Component, container_id: str) -> str:
        return stop_component(
            comp, container_id, spec, runtime, deps.probes, secrets, deps.settings
        )

    return stop


class _Run:
    """State of one reconcile after preflight: restart, plan, apply, verify, report."""

    def __init__(
        self,
        obj: StackObject,
        deps: Deps,
        spec: StackSpec,
        runtime: Runtime,
        secrets: Mapping[str, str],
        observed: dict[Component, Observed],
    ) -> None:
        self.obj, self.deps, self.spec, self.runtime = obj, deps, spec, runtime
        self.secrets, self.observed = secrets, observed
        self.events: list[st.EventNote] = []
        self.restarted_at: str | None = None
        self._checked_at = 0.0
        self.executor: Executor | None = None
        self._changed = False
        self.refused: tuple[Component, str, str] | None = None

    def converge(self, desired: Any, preflight_note: str, version: str) -> Result:
        ref, deps = self.obj.ref, self.deps
        error: KongMaskerError | None = None
        executor = Executor(
            ref,
            self.spec,
            self.runtime,
            deps.probes,
            self.secrets,
            deps.settings,
            self._progress,
            self._superseded,
        )
        self.executor = executor
        held: list[Component] = []
        try:
            if self._maybe_restart(desired):
                self.observed = observe(self.runtime, ref, desired, _kong_hash(self.spec, deps))
            actions = self._guard(plan(desired, self.observed))
            executor.apply(desired, actions)
        except Superseded as exc:
            error = exc
        except HealthGateTimeout as exc:
            error = exc
            held = _held_back(exc.component, executor)
        except GracefulRestartFailed as exc:
            error = exc
        except TransientError as exc:
            error = exc
        self._action_events(executor.done)
        if executor.done or error is not None:
            try:  # the containers changed: report what is there now
                self.observed = observe(self.runtime, ref, desired, _kong_hash(self.spec, deps))
            except TransientError as exc:
                error = error or exc
        if error is None:
            try:
                record_kong_hash(self.runtime, self.observed, desired)
            except TransientError as exc:
                error = exc
        if self.refused is not None and error is None:
            held = list(dependents(self.refused[0]))
        comps = st.components(self.observed, executor.health, held)
        verdicts = self._verdicts(error, executor.health, preflight_note)
        result = _finish(
            self.obj,
            deps,
            verdicts,
            comps,
            executor.health,
            endpoints(self.spec),
            error=error,
            version=version,
            restarted_at=self.restarted_at,
        )
        result.events[:0] = self.events
        result.actions = executor.done
        return result

    def _guard(self, actions: list[Action]) -> list[Action]:
        """Starting an exited container is a restart: within the watch's budget only. A
        refused start holds back everything after it (its dependents would wait on it)."""
        guard = self.deps.restarts
        if guard is None:
            return actions
        for i, action in enumerate(actions):
            if action.kind is not ActionKind.START:
                continue
            refusal = guard.admit(self.obj.ref.uid, action.component)
            if refusal is not None:
                self.refused = (action.component, *refusal)
                return actions[:i]
        return actions

    def _verdicts(
        self, error: KongMaskerError | None, health: Mapping[Component, Health], note: str
    ) -> list[st.Verdict]:
        if isinstance(error, Superseded):
            return st.progressing_verdicts(
                self.obj.status.get("conditions") or [], Reason.UPDATING, error.message
            )
        if error is not None:
            if isinstance(error, GracefulRestartFailed):
                # Nothing was lost: the old containers serve; the message says what failed.
                return st.degraded_verdicts(Reason.GRACEFUL_RESTART_FAILED, error.message, note)
            reason = (
                Reason.HEALTH_GATE_FAILED
                if isinstance(error, HealthGateTimeout)
                else (
                    Reason.CONFIG_APPLY_FAILED
                    if error.reason == "ConfigApplyFailed"
                    else Reason.DOCKER_ERROR
                )
            )
            return st.degraded_verdicts(reason, error.message, note)
        if self.refused is not None:
            _, why, message = self.refused
            return st.degraded_verdicts(why, f"{message}; not started", note)
        sick = [
            f"{c}: {h.message}"
            for c in START_ORDER
            if not (h := health.get(c, Health(False, "not checked"))).ok
        ]
        if sick:
            return st.degraded_verdicts(Reason.HEALTH_GATE_FAILED, "; ".join(sick), note)
        return st.ready_verdicts(note)

    def _superseded(self) -> bool:
        """Has the object changed since this reconcile loaded it? Asked at most once a second."""
        now = time.monotonic()
        if now - self._checked_at < 1.0:
            return self._changed
        self._checked_at = now
        try:
            fresh = self.deps.status.get_stack(self.obj.ref.namespace, self.obj.ref.name)
        except TransientError:
            return self._changed
        meta = (fresh or {}).get("metadata") or {}
        self._changed = (
            fresh is None
            or bool(meta.get("deletionTimestamp"))
            or meta.get("uid") != self.obj.ref.uid
            or int(meta.get("generation", 0)) != self.obj.generation
            or (meta.get("annotations") or {}).get(RESTART_ANNOTATION)
            != self.obj.annotations.get(RESTART_ANNOTATION)
        )
        return self._changed

    def _maybe_restart(self, desired: Mapping[Component, Any]) -> bool:
        """Restart if a new restart was requested; True if done. Recreate: stop everything
        in reverse order (the plan then starts it in order). Graceful: core/graceful.py."""
        wanted = self.obj.annotations.get(RESTART_ANNOTATION)
        if not wanted or wanted == self.obj.status.get("restartedAt"):
            return False
        fallback = ""
        if self.spec.restart_strategy == "Graceful":
            why_not = graceful.supported(self.spec)
            if why_not is None:
                self._graceful(desired, wanted)
                return True
            fallback = f"graceful restart not possible ({why_not}); "
        self._progress(Component.BACKEND, "restart requested: stopping in reverse order")
        notes = stop_stack(
            self.obj.ref,
            self.spec,
            self.runtime,
            self.deps.probes,
            self.secrets,
            self.deps.settings,
            progress=self._progress,
        )
        self.restarted_at = wanted
        self.events.append(
            st.EventNote(Reason.RESTARTING, fallback + "stopped for restart: " + "; ".join(notes))
        )
        return True

    def _graceful(self, desired: Mapping[Component, Any], wanted: str) -> None:
        """Hand every component over without downtime. Handled once per annotation value,
        also when it stops at a component (a Warning Event says why; the old container keeps
        serving): a new value tries again."""
        started = time.monotonic()
        migrate = graceful.migrate_note(self.runtime, self.observed)
        self._progress(Component.REDIS, f"graceful restart requested ({migrate})")
        handover = graceful.Handover(
            self.obj.ref,
            self.spec,
            self.runtime,
            self.deps.probes,
            self.secrets,
            self.deps.settings,
            progress=self._progress,
            superseded=self._superseded,
        )
        try:
            handover.run(desired, self.observed)
        except (GracefulRestartFailed, HealthGateTimeout) as exc:
            self.restarted_at = wanted
            self._handover_events(handover)
            self.events.append(
                st.EventNote(
                    Reason.GRACEFUL_RESTART_FAILED,
                    f"graceful restart stopped: {exc.message}; set a new "
                    f"{RESTART_ANNOTATION} value to try again",
                    warning=True,
                )
            )
            raise
        except Superseded:
            self._handover_events(handover)
            raise
        self.restarted_at = wanted
        self._handover_events(handover)
        took = time.monotonic() - started
        done = [str(c) for c, note in handover.notes if not note.startswith(graceful.SKIPPED)]
        skipped = [str(c) for c, note in handover.notes if note.startswith(graceful.SKIPPED)]
        summary = ", ".join(done) + (f" ({', '.join(skipped)} not running)" if skipped else "")
        warn = "tcp_migrate_req=1" not in migrate
        self.events.append(
            st.EventNote(
                Reason.RESTARTED,
                f"graceful restart done: {summary} in {took:.1f}s; {migrate}",
                warning=warn,
            )
        )

    def _handover_events(self, handover: graceful.Handover) -> None:
        for comp, note in handover.notes:
            if not note.startswith(graceful.SKIPPED):
                self.events.append(st.EventNote(Reason.HANDED_OVER, f"{comp}: {note}"))

    def _progress(self, comp: Component, message: str) -> None:
        log.info("[%s/%s] %s: %s", self.obj.ref.namespace, self.obj.ref.name, comp, message)
        verdicts = st.progressing_verdicts(
            self.obj.status.get("conditions") or [], Reason.STARTING, f"{comp}: {message}"
        )
        health = self.executor.health if self.executor else {}
        previous = self.obj.status.get("components")
        comps = st.components(self.observed, health, previous=previous) if self.observed else {}
        status = st.build(
            old_status=self.obj.status,
            verdicts=verdicts,
            comps=comps,
            generation=self.obj.generation,
            endpoints=endpoints(self.spec),
        )
        # Working on it, unless the last attempt left it degraded (a retry must not hide that).
        degraded = any(v.type is ConditionType.DEGRADED and v.ok for v in verdicts)
        status.phase = Phase.DEGRADED if degraded else Phase.PROGRESSING
        st.keep_generation(status, self.obj.status)
        try:
            self.deps.status.patch_status(
                self.obj.ref.namespace, self.obj.ref.name, status.to_dict()
            )
        except TransientError as exc:
            log.warning("progress status not written: %s", exc.message)

    def _action_events(self, done: list[Action]) -> None:
        ns, name = self.obj.ref.namespace, self.obj.ref.name
        for a in done:
            metrics.ACTIONS.labels(ns, name, str(a.component), str(a.kind)).inc()
            reason = Reason.KONG_CONFIG_DRIFT if a.drift else _event_reason(a)
            self.events.append(
                st.EventNote(reason, f"{a.kind} {a.component}: {a.reason}", warning=a.drift)
            )


def _kong_hash(spec: StackSpec, deps: Deps) -> Callable[[], str | None]:
    """Kong's live configuration hash, read when observing (level-based drift detection)."""
    return lambda: kong_live_hash(spec, deps.probes)


def _event_reason(a: Action) -> str:
    return {
        ActionKind.CREATE: "Created",
        ActionKind.RECREATE: "Recreated",
        ActionKind.START: "Started",
        ActionKind.REMOVE: "Removed",
        ActionKind.APPLY_CONFIG: Reason.CONFIG_APPLIED,
        ActionKind.RENAME: "Renamed",
    }[a.kind]


def _held_back(failed: str, executor: Executor) -> list[Component]:
    order = [str(c) for c in START_ORDER]
    idx = order.index(failed) if failed in order else 0
    return [c for c in START_ORDER[idx + 1 :] if c not in executor.health]


def stack_runtime(spec: StackSpec, ref: StackRef, deps: Deps) -> Runtime:
    """The stack's engine: spec.dockerHost (its TLS material from the Secret it names), else
    the operator's default."""
    return engine_for(
        spec, ref.namespace, deps.secrets, deps.runtime_for, deps.settings.docker.default_url
    )


def engine_for(
    spec: StackSpec,
    namespace: str,
    secrets: SecretReader,
    runtime_for: RuntimeFactory,
    default_url: str,
) -> Runtime:
    """The engine a stack runs on, for whoever needs it (the reconcile, the watch, the kubectl
    plugin): spec.dockerHost.url with the TLS Secret's material, else `default_url`."""
    tls_files = None
    if spec.docker_host.tls is not None:
        try:
            tls_files = secrets.read_secret(namespace, spec.docker_host.tls.name)
        except NotFound as exc:
            raise PreflightFailed(
                f"TLS Secret {namespace}/{spec.docker_host.tls.name} does not exist; create it "
                "with ca.pem, cert.pem and key.pem",
                reason=Reason.SECRET_MISSING,
            ) from exc
    return runtime_for(spec.docker_host.url or default_url, tls_files)


def _hibernate(obj: StackObject, deps: Deps, spec: StackSpec) -> Result:
    """Stop Backend -> Nginx -> Kong -> Redis (Redis saved), remove the containers, keep the
    volume; repeated reconciles find nothing to stop and only confirm the status."""
    ref = obj.ref
    try:
        runtime = stack_runtime(spec, ref, deps)
        running = runtime.list_containers(ref.name_labels())
        secrets = preflight.resolve_secrets(spec, ref.namespace, deps.secrets) if running else {}
        notes = stop_stack(ref, spec, runtime, deps.probes, secrets, deps.settings)
    except (PreflightFailed, TransientError) as exc:
        verdicts = st.degraded_verdicts(Reason.DOCKER_ERROR, exc.message, "hibernation incomplete")
        return _finish(obj, deps, verdicts, {}, {}, {}, error=exc)
    note = f"stopped, containers removed, volume {ref.redis_volume(spec)} kept"
    # Every component is named: the status patch is a merge, an empty map would keep the old.
    absent = ComponentStatus(ComponentState.ABSENT, message="hibernated")
    gone = {str(c): absent for c in START_ORDER}
    result = _finish(obj, deps, st.hibernated_verdicts(note), gone, {}, endpoints(spec))
    if notes:
        warn = any("WARNING" in n for n in notes)
        message = "hibernating: stopped Backend -> Nginx -> Kong -> Redis: " + "; ".join(notes)
        result.events.insert(0, st.EventNote(Reason.HIBERNATED, message, warning=warn))
    # No series of a stack that is down on purpose: its alert rules must stay quiet.
    metrics.forget(ref.namespace, ref.name)
    metrics.forget_observability(ref.namespace, ref.name)
    return result


def _finish(
    obj: StackObject,
    deps: Deps,
    verdicts: list[st.Verdict],
    comps: dict[str, Any],
    health: Mapping[Component, Health],
    eps: Mapping[str, str],
    *,
    error: KongMaskerError | None = None,
    version: str = "",
    restarted_at: str | None = None,
    keep_components: bool = False,
) -> Result:
    status = st.build(
        old_status=obj.status,
        verdicts=verdicts,
        comps=comps,
        generation=obj.generation,
        endpoints=eps,
        docker_version=version,
    )
    if restarted_at is not None:
        status.restarted_at = restarted_at
    body = status.to_dict()
    if keep_components:
        body.pop("components")
        body.pop("readyComponents")
    deps.status.patch_status(obj.ref.namespace, obj.ref.name, body)
    _export(obj.ref, status, health, verdicts)
    return Result(status=body, events=st.transitions(obj.status, status), error=error)


def _export(
    ref: StackRef, status: Any, health: Mapping[Component, Health], verdicts: list[st.Verdict]
) -> None:
    for comp in START_ORDER:
        if comp in health:
            metrics.COMPONENT_HEALTHY.labels(ref.namespace, ref.name, str(comp)).set(
                1 if health[comp].ok else 0
            )
    ready = next((v for v in verdicts if v.type is ConditionType.READY), None)
    if ready is not None:
        metrics.STACK_READY.labels(ref.namespace, ref.name).set(1 if ready.ok else 0)


def delete(obj: StackObject, deps: Deps) -> Result:
    """Graceful stop Backend -> Nginx -> Kong -> Redis, remove containers, keep the volume
    unless spec.redis.persistence.deleteOnStackDelete; report in one Event."""
    ref = obj.ref
    try:
        # A value limit newer than the stored object must not leave its containers running.
        spec = StackSpec.from_dict(obj.spec, values=False)
    except InvalidSpec:
        return Result(events=[st.EventNote(Reason.STOPPED, "invalid spec: nothing was started")])
    try:
        runtime = stack_runtime(spec, ref, deps)
        runtime.info()
    except TransientError as exc:
        if _ever_started(obj.status):
            raise  # containers may be running there: keep trying to stop them gracefully
        # Never reached (a wrong address, CA or Secret): nothing to stop, nothing to hold.
        note = f"the Docker engine was never reached ({exc.message}); nothing had been started"
        return Result(events=[st.EventNote(Reason.STOPPED, note, warning=True)])
    try:
        secrets = preflight.resolve_secrets(spec, ref.namespace, deps.secrets)
    except PreflightFailed as exc:
        # Without the password Redis cannot be asked to BGSAVE; SIGTERM still saves.
        log.warning("deleting %s/%s without Secrets: %s", ref.namespace, ref.name, exc.message)
        secrets = {}
    notes = stop_stack(ref, spec, runtime, deps.probes, secrets, deps.settings)
    volume = ref.redis_volume(spec)
    if spec.redis.persistence.delete_on_stack_delete:
        runtime.remove_volume(volume)
        notes.append(f"volume {volume} removed")
    else:
        notes.append(f"volume {volume} kept")
    metrics.forget(ref.namespace, ref.name)
    if len(notes) == 1 and not spec.redis.persistence.delete_on_stack_delete:
        return Result()  # nothing was running (e.g. a repeated delete handler): no Event
    warn = any("WARNING" in n for n in notes)
    message = "stopped Backend -> Nginx -> Kong -> Redis: " + "; ".join(notes)
    return Result(events=[st.EventNote(Reason.STOPPED, message, warning=warn)])


def _ever_started(status: Mapping[str, Any]) -> bool:
    """Has a reconcile ever seen a container of this stack (status.components records one)?"""
    comps = status.get("components") or {}
    return any((c or {}).get("containerID") for c in comps.values())
