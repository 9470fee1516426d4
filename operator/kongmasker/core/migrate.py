"""Migration of stacks made under the previous naming scheme (`km-<ns>-<name>-<component>`,
which collided across namespaces) to the names of api/naming.py, in place, keeping the data.

    legacy containers of THIS stack (by their namespace/name labels, never by name alone)
      -> stopped gracefully in reverse order (Redis saves first) -> removed
    legacy volume labelled for THIS stack, new volume absent
      -> new volume (labelled with the stack's uid) -> throwaway container copies /data
      -> copy checked (exit code) -> legacy volume removed

Runs at the start of a reconcile, before anything is created under the new names; the plan
then creates the containers as for a new stack, on the copied volume. A failed copy removes
the half-made new volume and fails the reconcile (retried), leaving the legacy volume as it
was. An old name owned by another stack (the collision this fixes) is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from kongmasker.adapters.runtime import ContainerSpec, Runtime
from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import (
    LABEL_STACK_NAME,
    LABEL_STACK_NAMESPACE,
    STOP_ORDER,
    Component,
)
from kongmasker.core.backup.rediscli import labels as scratch_labels
from kongmasker.core.render import StackRef, volume_labels
from kongmasker.errors import RuntimeOperationError

StopOne = Callable[[Component, str], str]
"""Stop one component's container gracefully (core/stack.py stop_component); returns a note."""

COPY_TIMEOUT = 600.0


def belongs_to(labels: Mapping[str, str] | None, ref: StackRef) -> bool:
    """Do these Docker labels name this stack's namespace/name (any incarnation)?"""
    labels = labels or {}
    return (
        labels.get(LABEL_STACK_NAMESPACE) == ref.namespace
        and labels.get(LABEL_STACK_NAME) == ref.name
    )


def migrate_legacy(
    runtime: Runtime,
    ref: StackRef,
    spec: StackSpec,
    stop: StopOne,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Move this stack off the legacy names; returns notes (empty: nothing to migrate)."""
    notes: list[str] = []
    for comp in STOP_ORDER:
        old = runtime.get_container(naming.legacy_container_name(ref.namespace, ref.name, comp))
        if old is None or not belongs_to(old.labels, ref):
            continue
        note = stop(comp, old.id)
        runtime.remove_container(old.id, force=True)
        notes.append(f"{comp}: {old.name} {note}, removed")
    if spec.redis.persistence.volume_name is None:
        old_vol = naming.legacy_redis_volume(ref.namespace, ref.name)
        new_vol = ref.redis_volume(spec)
        if runtime.volume_labels(new_vol) is None and belongs_to(
            runtime.volume_labels(old_vol), ref
        ):
            _copy_volume(runtime, ref, spec.redis.image, old_vol, new_vol, clock, sleep)
            runtime.remove_volume(old_vol)
            notes.append(f"volume {old_vol} copied to {new_vol} and removed")
    return notes


def _copy_volume(
    runtime: Runtime,
    ref: StackRef,
    image: str,
    source: str,
    target: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    runtime.ensure_volume(target, volume_labels(ref))
    name = f"km-scratch-migrate-{ref.uid[:8]}"
    leftover = runtime.get_container(name)
    if leftover is not None:
        runtime.remove_container(leftover.id, force=True)
    info = runtime.create_container(
        ContainerSpec(
            name=name,
            image=image,
            entrypoint=("sh", "-c", "cp -a /from/. /to/"),
            labels=scratch_labels("migrate"),
            volumes={source: "/from", target: "/to"},
            restart=False,
        )
    )
    try:
        runtime.start_container(info.id)
        deadline = clock() + COPY_TIMEOUT
        while (now := runtime.get_container(info.id)) is not None and now.running:
            if clock() > deadline:
                raise RuntimeOperationError(f"copying volume {source} took over {COPY_TIMEOUT}s")
            sleep(0.2)
        if now is None or now.exit_code != 0:
            code = "gone" if now is None else f"exit code {now.exit_code}"
            raise RuntimeOperationError(f"copying volume {source} to {target} failed ({code})")
    except BaseException:
        runtime.remove_container(info.id, force=True)
        runtime.remove_volume(target)
        raise
    runtime.remove_container(info.id, force=True)
