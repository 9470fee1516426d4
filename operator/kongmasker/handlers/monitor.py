"""The health watch of each KongMaskerStack (issue 5): a kopf daemon per stack that every
`monitor.interval` seconds runs one `StackMonitor.tick` (probes, auto-recovery of hung or
exited containers, mirrored component counters, the masking canary when due) under the
stack's lock, posts the Events it returns and merges its conditions (MaskingVerified, and
Degraded while a restart budget is exhausted) into the status. A resource sampler thread per
stack publishes the container metrics.

The watch stands aside while the stack is not settled (Progressing, Paused, Terminating):
starting, stopping and restarting are the reconcile's, and a container it stopped on purpose
must not be "healed".
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import kopf

from kongmasker.adapters.notifier import Alert, WebhookNotifier
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import GROUP, PLURAL, VERSION, Component, Phase
from kongmasker.config import MonitorSettings
from kongmasker.core import preflight
from kongmasker.core import status as st
from kongmasker.core.monitor import StackMonitor, conditions_with
from kongmasker.core.reconcile import Deps
from kongmasker.core.recovery import Policy
from kongmasker.core.render import StackRef
from kongmasker.core.resources import ResourceSampler
from kongmasker.errors import KongMaskerError

log = logging.getLogger(__name__)

SETTLED = frozenset({str(Phase.READY), str(Phase.DEGRADED)})


def _lock(memo: kopf.Memo, uid: str) -> threading.Lock:
    # The same per-stack lock as handlers/stack.py: a tick never interleaves with a reconcile.
    with memo["locks_guard"]:
        lock: threading.Lock = memo["locks"].setdefault(uid, threading.Lock())
        return lock


def _policy(m: MonitorSettings) -> Policy:
    return Policy(
        failure_threshold=m.failure_threshold,
        startup_grace=m.startup_grace,
        backoff_initial=m.backoff_initial,
        backoff_max=max(m.backoff_max, m.backoff_initial),
        budget=m.restart_budget,
        window=m.restart_window,
    )


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_backoff=1.0, cancellation_timeout=15)
def watch_health(
    body: kopf.Body, uid: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Probe, heal and measure one stack until it is deleted or the operator stops."""
    deps: Deps = memo["deps"]
    m = deps.settings.monitor
    if not m.enabled:
        return
    ns, name = str(body.metadata.namespace), str(body.metadata.name)
    monitor = StackMonitor(
        ns,
        name,
        policy=_policy(m),
        canary_interval=m.canary_interval,
        canary_per_type_timing=m.canary_per_type_timing,
        stop_timeout=max(1, min(10, deps.settings.stop.grace_seconds)),
        probe_timeout=deps.settings.health.probe_timeout,
    )
    sampler = ResourceSampler(m.resources_interval) if m.resources_interval > 0 else None
    notifier = _notifier(memo, m)
    try:
        if sampler is not None:
            sampler.start()
        while not stopped:
            stopped.wait(m.interval)
            if stopped:
                break
            if body.metadata.get("deletionTimestamp"):
                break
            try:
                _tick(body, uid, memo, deps, monitor, sampler, notifier)
            except KongMaskerError as exc:
                log.info("[%s/%s] health watch skipped a round: %s", ns, name, exc.message)
    finally:
        # Without waiting: a sampling round blocked on a container being stopped must not
        # hold up the deletion (kopf keeps the finalizer until every daemon has returned).
        if sampler is not None:
            sampler.stop(timeout=0)
        monitor.forget()


def _tick(
    body: kopf.Body,
    uid: str,
    memo: kopf.Memo,
    deps: Deps,
    monitor: StackMonitor,
    sampler: ResourceSampler | None,
    notifier: WebhookNotifier | None,
) -> None:
    ns, name = monitor.namespace, monitor.name
    lock = _lock(memo, uid)
    # A reconcile in progress owns the containers; try again next round.
    if not lock.acquire(timeout=1.0):
        return
    try:
        fresh = deps.status.get_stack(ns, name)
        meta = (fresh or {}).get("metadata") or {}
        status = (fresh or {}).get("status") or {}
        if not fresh or meta.get("deletionTimestamp") or status.get("phase") not in SETTLED:
            return
        spec = StackSpec.from_dict(fresh.get("spec") or {})
        if spec.paused:
            return
        ref = StackRef(ns, name, uid)
        secrets = preflight.resolve_secrets(spec, ns, deps.secrets)
        # TLS engines: the reconcile reads their Secret; the watch covers local/plain engines.
        runtime = deps.runtime_for(spec.docker_host.url or deps.settings.docker.default_url, None)
        if sampler is not None:
            sampler.watch(ns, name, runtime, ref.stack_labels(), _cpu_limits(spec))
        result = monitor.tick(spec, ref, runtime, deps.probes, secrets)
        if result.verdicts:
            generation = int(status.get("observedGeneration", 0) or 0)
            conditions = conditions_with(
                status.get("conditions") or [], result.verdicts, generation, st.now()
            )
            deps.status.patch_status(ns, name, {"conditions": conditions})
    finally:
        lock.release()
    _post(body, result.events)
    if notifier is not None:
        _notify(notifier, ns, name, result.events)


def _post(body: kopf.Body, events: list[st.EventNote]) -> None:
    for e in events:
        with contextlib.suppress(Exception):  # an Event lost must not stop the watch
            kopf.event(
                body, type="Warning" if e.warning else "Normal", reason=e.reason, message=e.message
            )


def _notifier(memo: kopf.Memo, m: MonitorSettings) -> WebhookNotifier | None:
    """One notifier for the operator (its de-duplication spans every stack)."""
    if not m.webhook_url:
        return None
    with memo["locks_guard"]:
        if "notifier" not in memo:
            memo["notifier"] = WebhookNotifier(m.webhook_url, cooldown=m.webhook_cooldown)
        notifier: WebhookNotifier = memo["notifier"]
        return notifier


def _notify(notifier: WebhookNotifier, ns: str, name: str, events: list[st.EventNote]) -> None:
    for e in events:
        if not e.warning:
            continue
        head = e.message.split(":", 1)[0]
        component = head if head in {str(c) for c in Component} else ""
        severity = "critical" if e.reason == "RestartBudgetExhausted" else "warning"
        key = f"{ns}/{name}/{e.reason}/{component}"
        alert = Alert(key, severity, e.reason, e.message, ns, name, component)
        outcome = notifier.notify(alert)
        if outcome.error:
            log.warning("[%s/%s] alert %s not delivered: %s", ns, name, e.reason, outcome.error)


def _cpu_limits(spec: StackSpec) -> dict[Component, int | None]:
    return {
        Component.REDIS: spec.redis.resources.nano_cpus,
        Component.KONG: spec.kong.resources.nano_cpus,
        Component.NGINX: spec.nginx.resources.nano_cpus,
        Component.BACKEND: spec.backend.resources.nano_cpus,
    }
