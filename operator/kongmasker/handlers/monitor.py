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
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

from kongmasker.adapters.notifier import Alert, WebhookNotifier
from kongmasker.adapters.probes import NetProbes, Probes
from kongmasker.api.spec import MonitoringSpec, StackSpec
from kongmasker.api.vocabulary import GROUP, PLURAL, VERSION, Component, Phase
from kongmasker.config import MonitorSettings
from kongmasker.core import alerts, preflight
from kongmasker.core import status as st
from kongmasker.core.monitor import Monitors, StackMonitor, Tuning, conditions_with
from kongmasker.core.reconcile import Deps, stack_runtime
from kongmasker.core.render import StackRef
from kongmasker.core.resources import ResourceSampler
from kongmasker.errors import KongMaskerError
from kongmasker.handlers.lifecycle import stack_lock

log = logging.getLogger(__name__)

SETTLED = frozenset({str(Phase.READY), str(Phase.DEGRADED)})


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
    defaults = Tuning.of(m, deps.settings.health.probe_timeout, MonitoringSpec())
    monitor = StackMonitor(
        ns,
        name,
        policy=defaults.policy,
        canary_interval=defaults.canary_period,
        canary_per_type_timing=m.canary_per_type_timing,
        stop_timeout=max(1, min(10, deps.settings.stop.grace_seconds)),
        probe_timeout=defaults.probe_timeout,
    )
    period = [defaults.period]  # spec.monitoring.probes.periodSeconds, read each round
    sampler = ResourceSampler(m.resources_interval) if m.resources_interval > 0 else None
    notifier = _notifier(memo, m)
    monitors: Monitors = memo["monitors"]
    wake = monitors.add(uid, monitor)
    try:
        if sampler is not None:
            sampler.start()
        while not stopped:
            if _sleep(stopped, wake, period[0]):
                # An exit was reported: give Docker's restart policy (the first responder)
                # a moment, so that this round counts its restart instead of racing it.
                stopped.wait(deps.settings.reconcile.event_debounce)
            if stopped:
                break
            if body.metadata.get("deletionTimestamp"):
                break
            try:
                _tick(body, uid, memo, deps, monitor, sampler, notifier, period)
            except KongMaskerError as exc:
                log.info("[%s/%s] health watch skipped a round: %s", ns, name, exc.message)
    finally:
        # Without waiting: a sampling round blocked on a container being stopped must not
        # hold up the deletion (kopf keeps the finalizer until every daemon has returned).
        if sampler is not None:
            sampler.stop(timeout=0)
        monitors.drop(uid)
        monitor.forget()
        _forget_alerts(memo, uid)


def _sleep(stopped: kopf.DaemonStopped, wake: threading.Event, seconds: float) -> bool:
    """Wait `seconds`, less if the daemon is stopped or woken; True if woken."""
    deadline = time.monotonic() + seconds
    while not stopped and (left := deadline - time.monotonic()) > 0:
        if wake.wait(min(left, 0.5)):
            wake.clear()
            return True
    return False


def _tick(
    body: kopf.Body,
    uid: str,
    memo: kopf.Memo,
    deps: Deps,
    monitor: StackMonitor,
    sampler: ResourceSampler | None,
    notifier: WebhookNotifier | None,
    period: list[float],
) -> None:
    ns, name = monitor.namespace, monitor.name
    lock = stack_lock(memo, uid)
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
        runtime = stack_runtime(spec, ref, deps)  # TCP+TLS engines: material from the Secret
        if sampler is not None:
            sampler.watch(ns, name, runtime, ref.stack_labels(), _cpu_limits(spec))
        tuning = Tuning.of(
            deps.settings.monitor, deps.settings.health.probe_timeout, spec.monitoring
        )
        monitor.retune(tuning)
        period[0] = tuning.period
        probes = _probes(memo, deps, tuning.probe_timeout)
        result = monitor.tick(spec, ref, runtime, probes, secrets)
        patch: dict[str, Any] = {}
        if result.verdicts:
            generation = int(status.get("observedGeneration", 0) or 0)
            patch["conditions"] = conditions_with(
                status.get("conditions") or [], result.verdicts, generation, st.now()
            )
            phase = st.masking_phase(str(status.get("phase")), patch["conditions"])
            if phase != status.get("phase"):
                patch["phase"] = phase
                result.events.append(
                    st.EventNote(
                        f"Phase{phase}",
                        f"phase {status.get('phase')} -> {phase}: masking "
                        + ("not verified" if phase == Phase.DEGRADED else "verified again"),
                        warning=phase == Phase.DEGRADED,
                    )
                )
        if (report := monitor.status_report(st.now())) is not None:
            patch["watch"] = report
        if patch:
            deps.status.patch_status(ns, name, patch)
    finally:
        lock.release()
    _post(body, result.events)
    _alert(body, uid, memo, deps, spec, result.events, notifier)


def _probes(memo: kopf.Memo, deps: Deps, timeout: float) -> Probes:
    """Probes with the stack's timeout: the operator's own unless the spec sets another."""
    if timeout == deps.settings.health.probe_timeout:
        return deps.probes
    with memo["locks_guard"]:
        cache: dict[float, Probes] = memo.setdefault("probes_by_timeout", {})
        if timeout not in cache:
            cache[timeout] = NetProbes(timeout)
        return cache[timeout]


def _post(body: kopf.Body, events: list[st.EventNote]) -> None:
    for e in events:
        with contextlib.suppress(Exception):  # an Event lost must not stop the watch
            kopf.event(
                body, type="Warning" if e.warning else "Normal", reason=e.reason, message=e.message
            )


def _notifier(memo: kopf.Memo, m: MonitorSettings) -> WebhookNotifier | None:
    """The operator-wide notifier (its de-duplication spans every stack without
    spec.alerts.webhook; keys name the stack)."""
    if not m.webhook_url:
        return None
    with memo["locks_guard"]:
        if "notifier" not in memo:
            memo["notifier"] = WebhookNotifier(m.webhook_url, cooldown=m.webhook_cooldown)
        notifier: WebhookNotifier = memo["notifier"]
        return notifier


@dataclass
class _StackAlerts:
    """memo["alerting"][uid]: a stack's alert channel and its own notifier (for
    spec.alerts.webhook), so de-duplication and cooldown are per stack."""

    channel: alerts.Channel = field(default_factory=alerts.Channel)
    notifier: WebhookNotifier | None = None
    url_digest: str = ""
    """sha256 of the URL the notifier posts to (a changed Secret gives a new notifier)."""

    def notifier_for(self, target: alerts.Target) -> WebhookNotifier:
        digest = hashlib.sha256(target.url.encode()).hexdigest()
        if self.notifier is None or digest != self.url_digest:
            self.close()
            self.notifier = WebhookNotifier(target.url, cooldown=target.cooldown)
            self.url_digest = digest
        self.notifier.cooldown = target.cooldown
        return self.notifier

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        self.notifier, self.url_digest = None, ""


def _alert(
    body: kopf.Body,
    uid: str,
    memo: kopf.Memo,
    deps: Deps,
    spec: StackSpec,
    events: list[st.EventNote],
    fallback: WebhookNotifier | None,
) -> None:
    """Send a tick's Warning Events to the stack's webhook: spec.alerts.webhook (URL from its
    Secret, read each tick), else the operator-wide `fallback` (core/alerts.py). An unusable
    webhook gives one AlertWebhookUnavailable Warning and never stops the watch."""
    ns, name = str(body.metadata.namespace), str(body.metadata.name)
    m = deps.settings.monitor
    with memo["locks_guard"]:
        stack: _StackAlerts = memo.setdefault("alerting", {}).setdefault(uid, _StackAlerts())
    try:
        res = alerts.resolve(
            spec.alerts.webhook,
            ns,
            deps.secrets,
            operator_url=m.webhook_url,
            operator_cooldown=m.webhook_cooldown,
        )
    except KongMaskerError as exc:  # e.g. the API server unreachable: keep the last target
        log.info("[%s/%s] alert webhook not resolved this round: %s", ns, name, exc.message)
        res = alerts.Resolution(None, unknown=True)
    notes = stack.channel.update(res)
    _post(body, notes)
    target = stack.channel.target
    if target is None:
        stack.close()
        return
    notifier = stack.notifier_for(target) if target.per_stack else fallback
    if notifier is not None:
        _notify(notifier, ns, name, [*events, *notes], target)


def _forget_alerts(memo: kopf.Memo, uid: str) -> None:
    """Drop a stack's alert channel (its daemon ended: the stack is deleted or the operator
    stops)."""
    with memo["locks_guard"]:
        stack: _StackAlerts | None = memo.get("alerting", {}).pop(uid, None)
    if stack is not None:
        stack.close()


def _notify(
    notifier: WebhookNotifier,
    ns: str,
    name: str,
    events: list[st.EventNote],
    target: alerts.Target,
) -> None:
    for note in alerts.alerts_for(events, ns, name, target.min_severity):
        alert = Alert(note.key, note.severity, note.reason, note.message, ns, name, note.component)
        try:
            outcome = notifier.notify(alert)
        except Exception as exc:  # an alert lost must not stop the watch; the text may hold the URL
            log.warning(
                "[%s/%s] alert %s not delivered to %s: %s",
                ns,
                name,
                note.reason,
                target.origin,
                type(exc).__name__,
            )
            continue
        if outcome.error:
            log.warning(
                "[%s/%s] alert %s not delivered to %s: %s",
                ns,
                name,
                note.reason,
                target.origin,
                outcome.error,
            )


def _cpu_limits(spec: StackSpec) -> dict[Component, int | None]:
    return {
        Component.REDIS: spec.redis.resources.nano_cpus,
        Component.KONG: spec.kong.resources.nano_cpus,
        Component.NGINX: spec.nginx.resources.nano_cpus,
        Component.BACKEND: spec.backend.resources.nano_cpus,
    }
