"""KongMaskerStack handlers: change handlers, the periodic timer and the Docker-event daemon
all funnel into one locked reconcile; delete runs the graceful stop behind the finalizer."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import kopf

from kongmasker.adapters.runtime import Runtime, RuntimeEvent
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import (
    GROUP,
    LABEL_COMPONENT,
    LABEL_PART_OF,
    LABEL_STACK_UID,
    PART_OF,
    PLURAL,
    VERSION,
    Component,
)
from kongmasker.config import Settings
from kongmasker.core import reconcile as core
from kongmasker.core.monitor import Monitors
from kongmasker.core.render import StackRef
from kongmasker.core.status import EventNote
from kongmasker.errors import KongMaskerError, PermanentError, TransientError
from kongmasker.handlers.lifecycle import stack_lock

_SETTINGS = Settings.from_env()  # timer intervals are fixed when the decorators run
COMPONENTS = frozenset(str(c) for c in Component)
EXIT_ACTIONS = frozenset({"die", "kill", "stop", "oom"})
# Not "kill": a signal that ends the process is followed by "die"; one that does not (SIGHUP,
# SIGSTOP) changes nothing a reconcile could repair.
DRIFT_ACTIONS = frozenset({"die", "stop", "destroy", "oom", "pause", "rename"})


def _post(body: kopf.Body, events: list[EventNote]) -> None:
    for e in events:
        # kopf.event, not kopf.info: our Events are posted whatever the posting level.
        kind = "Warning" if e.warning else "Normal"
        kopf.event(body, type=kind, reason=e.reason, message=e.message)


def _run(body: kopf.Body, memo: kopf.Memo) -> None:
    """Load the current object, reconcile it under its lock, post Events, map errors."""
    deps: core.Deps = memo["deps"]
    ns, name, uid = body.metadata.namespace, body.metadata.name, body.metadata.uid
    with stack_lock(memo, str(uid)):
        # Re-read inside the lock: a queued timer must not act on a status another
        # reconcile has just changed (e.g. restartedAt).
        fresh = deps.status.get_stack(str(ns), str(name))
        if fresh is None or fresh.get("metadata", {}).get("deletionTimestamp"):
            return
        meta = fresh["metadata"]
        obj = core.StackObject(
            ref=StackRef(str(ns), str(name), str(meta["uid"])),
            generation=int(meta.get("generation", 0)),
            spec=fresh.get("spec") or {},
            status=fresh.get("status") or {},
            annotations=meta.get("annotations") or {},
        )
        result = core.reconcile(obj, deps)
    _post(body, result.events)
    err = result.error
    if isinstance(err, PermanentError):
        raise kopf.PermanentError(err.message)
    if isinstance(err, TransientError):
        raise kopf.TemporaryError(err.message, delay=err.delay)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_on_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Spec, labels or annotations changed (or the operator restarted)."""
    _run(body, memo)


@kopf.timer(
    GROUP, VERSION, PLURAL, interval=_SETTINGS.reconcile.interval, idle=_SETTINGS.reconcile.idle
)
def reconcile_periodically(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Level-based: compare with the Docker host even when nothing was announced."""
    # Failures are already in status and Events; the next tick retries.
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        _run(body, memo)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
def watch_docker_events(
    body: kopf.Body,
    spec: kopf.Spec,
    uid: str,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    """Reconcile soon after one of this stack's containers dies, stops or disappears."""
    deps: core.Deps = memo["deps"]
    labels = {LABEL_PART_OF: PART_OF, LABEL_STACK_UID: uid}
    ref = StackRef(str(body.metadata.namespace), str(body.metadata.name), uid)
    since = time.time()
    runtime: Runtime | None = None
    while not stopped:
        until = time.time() + 2.0
        try:
            if runtime is None:  # (re)connected after an error: spec or TLS Secret may be new
                runtime = core.stack_runtime(StackSpec.from_dict(dict(spec)), ref, deps)
            drift = [e for e in runtime.events(labels, since, until) if e.action in DRIFT_ACTIONS]
        except KongMaskerError:  # engine away, TLS Secret missing, invalid spec: retry later
            runtime = None
            stopped.wait(5.0)
            continue
        since = until
        drift = _hand_exits_to_the_watch(drift, uid, memo["monitors"])
        if drift and not stopped:
            stopped.wait(deps.settings.reconcile.event_debounce)
            with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
                _run(body, memo)


def _hand_exits_to_the_watch(
    drift: list[RuntimeEvent], uid: str, monitors: Monitors
) -> list[RuntimeEvent]:
    """Unrequested exits go to the health watch (it restarts within the restart budget and
    says so); the events left over are drift for the reconcile to repair."""
    watched = set()
    for e in drift:
        comp = e.labels.get(LABEL_COMPONENT, "")
        exited = e.action == "die" and not e.requested and comp in COMPONENTS
        if exited and monitors.exited(uid, Component(comp), e.exit_code):
            watched.add(e.container_id)
    return [e for e in drift if not (e.container_id in watched and e.action in EXIT_ACTIONS)]


@kopf.on.delete(GROUP, VERSION, PLURAL)
def stop_on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Graceful reverse stop before the finalizer is released."""
    deps: core.Deps = memo["deps"]
    meta = body.metadata
    obj = core.StackObject(
        ref=StackRef(str(meta.namespace), str(meta.name), str(meta.uid)),
        generation=int(meta.get("generation", 0)),
        spec=dict(body.spec),
        status=dict(body.status),
        annotations=dict(meta.annotations),
    )
    with stack_lock(memo, str(meta.uid)):
        try:
            result = core.delete(obj, deps)
        except TransientError as exc:
            raise kopf.TemporaryError(exc.message, delay=exc.delay) from exc
    _post(body, result.events)
