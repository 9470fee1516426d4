"""StackBackup handlers: one per request type, each delegating to kongmasker.core.backup.

* type Backup:   on create (and on resume, for one interrupted by an operator restart);
                 validated again when its `backup.kongmasker.io/validate-requested-at` changes.
* type Restore:  the same; it waits (kopf retry) while the source backup is still running,
                 and holds the stack's reconcile lock while the stack's data is swapped.
* type Schedule: a timer; each tick creates the due backup and applies retention.

No finalizer on Backups: deleting one keeps its files (retention deletes both). Schedules
have one: a deleted Schedule applies its retention one last time (core schedule_deleted).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf

from kongmasker.adapters.backup_kube import KubeBackupApi
from kongmasker.api.backup import BACKUP_PLURAL, VALIDATE_ANNOTATION, BackupType
from kongmasker.api.vocabulary import GROUP, VERSION
from kongmasker.core.backup import controller as core
from kongmasker.core.status import EventNote
from kongmasker.errors import NotFound, TransientError
from kongmasker.handlers.lifecycle import stack_lock

SCHEDULE_TICK_SECONDS = 5.0
"""How often schedules are checked: the finest cron granularity honoured (seconds field)."""


def _is(kind: BackupType) -> Any:
    return lambda spec, **_: spec.get("type", BackupType.BACKUP) == kind


def _deps(memo: kopf.Memo) -> core.BackupDeps:
    with memo["locks_guard"]:
        if "backup_deps" not in memo:
            deps = memo["deps"]
            memo["backup_deps"] = core.BackupDeps(
                runtime_for=deps.runtime_for,
                secrets=deps.secrets,
                stacks=deps.status,
                api=KubeBackupApi(),
                probes=deps.probes,
                settings=deps.settings,
                stack_lock=lambda uid: stack_lock(memo, uid),
            )
        deps_: core.BackupDeps = memo["backup_deps"]
        return deps_


def _post(body: kopf.Body, events: list[EventNote]) -> None:
    for e in events:
        # kopf.event, not kopf.info: the operator's posting level would drop Normal Events.
        kind = "Warning" if e.warning else "Normal"
        kopf.event(body, type=kind, reason=str(e.reason), message=e.message)


@kopf.on.resume(GROUP, VERSION, BACKUP_PLURAL, when=_is(BackupType.BACKUP))
@kopf.on.create(GROUP, VERSION, BACKUP_PLURAL, when=_is(BackupType.BACKUP))
def backup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Take and validate one backup."""
    try:
        _post(body, core.run_backup(core.BackupObject.from_body(body), _deps(memo)))
    except NotFound:
        return  # the object was deleted meanwhile


@kopf.on.field(
    GROUP,
    VERSION,
    BACKUP_PLURAL,
    field=("metadata", "annotations", VALIDATE_ANNOTATION),
    when=_is(BackupType.BACKUP),
)
def revalidate(body: kopf.Body, new: Any, memo: kopf.Memo, **_: Any) -> None:
    """Validate a stored backup again when its validate annotation gets a new value."""
    if not new:
        return
    try:
        _post(body, core.revalidate(core.BackupObject.from_body(body), _deps(memo), str(new)))
    except NotFound:
        return


@kopf.on.resume(GROUP, VERSION, BACKUP_PLURAL, when=_is(BackupType.RESTORE))
@kopf.on.create(GROUP, VERSION, BACKUP_PLURAL, when=_is(BackupType.RESTORE))
def restore(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Restore a backup into the stack (retried while the backup is not finished)."""
    try:
        _post(body, core.run_restore(core.BackupObject.from_body(body), _deps(memo)))
    except core.SourceNotReady as exc:
        raise kopf.TemporaryError(exc.message, delay=exc.delay) from exc
    except NotFound:
        return


@kopf.on.delete(GROUP, VERSION, BACKUP_PLURAL, when=_is(BackupType.SCHEDULE))
def schedule_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A deleted Schedule applies its retention one last time (files included)."""
    now = dt.datetime.now(dt.UTC)
    try:
        _post(body, core.schedule_deleted(core.BackupObject.from_body(body), _deps(memo), now))
    except TransientError as exc:
        raise kopf.TemporaryError(exc.message, delay=exc.delay) from exc


@kopf.timer(
    GROUP,
    VERSION,
    BACKUP_PLURAL,
    interval=SCHEDULE_TICK_SECONDS,
    when=_is(BackupType.SCHEDULE),
)
def schedule(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Create the backup that is due, then apply retention."""
    now = dt.datetime.now(dt.UTC)
    try:
        _post(body, core.tick_schedule(core.BackupObject.from_body(body), _deps(memo), now))
    except NotFound:
        return
    except TransientError as exc:
        raise kopf.TemporaryError(exc.message, delay=exc.delay) from exc
