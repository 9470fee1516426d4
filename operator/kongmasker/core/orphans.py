"""Orphans: containers the operator created for stacks that no longer exist (deleted while
the operator was down, or left by a crash). Found by label, stopped with their own stop
signal (Redis saves on SIGTERM), removed; volumes are kept. Also the throwaway containers of
backups (validation Redis, restore, store helper) that an operator crash left behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from kongmasker.adapters.runtime import Runtime
from kongmasker.api.vocabulary import (
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_STACK_NAMESPACE,
    LABEL_STACK_UID,
    MANAGED_BY,
    PART_OF,
)
from kongmasker.core.backup.rediscli import LABEL_SCRATCH

log = logging.getLogger(__name__)


def sweep(
    runtime: Runtime,
    live_uids: Callable[[], Collection[str]],
    namespaces: Collection[str] = (),
    grace: int = 20,
) -> list[str]:
    """Remove operator-made containers whose stack UID is not live; returns their names.

    Containers are listed before the stacks so that a stack created in between is never
    mistaken for gone. With `namespaces`, only containers of those namespaces are touched
    (an operator scoped to some namespaces does not judge the others').
    """
    labels = {LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY}
    candidates = [c for c in runtime.list_containers(labels) if c.labels.get(LABEL_STACK_UID)]
    if namespaces:
        candidates = [c for c in candidates if c.labels.get(LABEL_STACK_NAMESPACE) in namespaces]
    alive = set(live_uids())
    removed = []
    for c in candidates:
        if c.labels[LABEL_STACK_UID] in alive:
            continue
        log.warning("removing orphan container %s (its stack no longer exists)", c.name)
        if c.running:
            runtime.stop_container(c.id, timeout=grace)
        runtime.remove_container(c.id, force=True)
        removed.append(c.name)
    return removed


def sweep_scratch(runtime: Runtime) -> list[str]:
    """Remove exited throwaway containers; returns their names. Running ones may be in use
    (by this operator's next operation or by another operator sharing the engine)."""
    removed = []
    for c in runtime.list_containers({LABEL_PART_OF: PART_OF}):
        if LABEL_SCRATCH in c.labels and c.status in ("exited", "dead"):
            log.info("removing leftover throwaway container %s", c.name)
            runtime.remove_container(c.id, force=True)
            removed.append(c.name)
    return removed
