"""Operator start-up: kopf settings and the dependencies handed down to core."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import kopf

from kongmasker import metrics
from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.kube import KubeClient
from kongmasker.adapters.probes import NetProbes
from kongmasker.adapters.runtime import Runtime
from kongmasker.api.vocabulary import FINALIZER, GROUP
from kongmasker.config import Settings
from kongmasker.core.monitor import Monitors
from kongmasker.core.orphans import sweep, sweep_scratch
from kongmasker.core.reconcile import Deps
from kongmasker.errors import TransientError

KOPF_PREFIX = f"kopf.{GROUP}"


class RuntimeCache:
    """One Docker client per (engine URL, TLS material): clients are reused across stacks."""

    def __init__(self, timeout: float, owner: str) -> None:
        self._timeout = timeout
        self._owner = owner
        self._clients: dict[tuple[str, int], DockerRuntime] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str, tls_files: Mapping[str, bytes] | None) -> Runtime:
        key = (url, hash(tuple(sorted((tls_files or {}).items()))))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = DockerRuntime.connect(
                    url, tls_files=tls_files, timeout=self._timeout, owner=self._owner
                )
            return self._clients[key]


def build_deps(settings: Settings) -> Deps:
    """The real adapters, built once."""
    kube = KubeClient()
    return Deps(
        runtime_for=RuntimeCache(settings.docker.timeout, settings.operator.id),
        probes=NetProbes(settings.health.probe_timeout),
        secrets=kube,
        status=kube,
        settings=settings,
        restarts=Monitors(),
    )


def stack_lock(memo: kopf.Memo, uid: str) -> threading.Lock:
    """The lock of one stack (by UID): reconciles, the health watch's rounds, deletes and
    restores take it, so none of them interleave on the stack's containers."""
    with memo["locks_guard"]:
        lock: threading.Lock = memo["locks"].setdefault(uid, threading.Lock())
        return lock


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """kopf settings; the Deps are built here unless `python -m kongmasker` passed them."""
    ours: Settings = memo.get("settings") or Settings.from_env()
    memo.setdefault("settings", ours)
    if "deps" not in memo:
        memo["deps"] = build_deps(ours)
    deps: Deps = memo["deps"]
    if deps.restarts is None:
        deps.restarts = Monitors()
    memo.setdefault("monitors", deps.restarts)
    memo.setdefault("locks", {})
    memo.setdefault("locks_guard", threading.Lock())
    settings.persistence.finalizer = FINALIZER
    # kopf leaves its own annotations out of change detection by prefix; under plain GROUP it
    # would also hide the users' `kongmasker.io/restartedAt`, delaying a restart to the timer.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    # Only our own Events (and kopf's warnings) reach the object, not every handler success.
    settings.posting.level = logging.WARNING
    # Sync daemons and timers each hold a worker thread while they run: two per stack for good.
    settings.execution.max_workers = ours.operator.max_workers
    settings.watching.server_timeout = 120
    metrics.serve(ours.metrics.addr)


@kopf.on.startup()
def sweep_orphans(
    memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    """Containers of stacks deleted while the operator was away are stopped and removed."""
    deps: Deps = memo["deps"]
    kube: KubeClient = deps.secrets  # type: ignore[assignment]
    namespaces = tuple(memo.get("namespaces") or ())
    try:
        runtime = deps.runtime_for(deps.settings.docker.default_url, None)
        removed = sweep(
            runtime,
            lambda: kube.list_stack_uids(namespaces),
            namespaces,
            deps.settings.stop.grace_seconds,
        )
        removed += sweep_scratch(runtime)
    except TransientError as exc:
        logger.warning("orphan sweep skipped: %s", exc.message)
        return
    if removed:
        logger.info("removed %d orphan container(s): %s", len(removed), ", ".join(removed))
