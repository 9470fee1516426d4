"""Retention of a schedule's backups: which ones to delete. Pure.

Rules, in order:
1. A backup still being taken or validated is never deleted.
2. The newest Validated backup is never deleted, whatever its age or position, so a run of
   failed or invalid backups can never leave a stack without a restorable one.
3. Every other backup is kept only while it satisfies every configured limit: it is among
   the `keepLast` newest backups, and it is younger than `maxAge`. No limit: keep all.

    >>> from datetime import datetime, timedelta, UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> recs = [BackupRecord(f"b{i}", t + timedelta(hours=i), "Validated") for i in range(4)]
    >>> select_for_deletion(recs, RetentionSpec(keep_last=2), t + timedelta(hours=5))
    ['b0', 'b1']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from kongmasker.api.backup import BackupPhase, RetentionSpec

IN_FLIGHT = frozenset(
    {BackupPhase.NEW, BackupPhase.IN_PROGRESS, BackupPhase.COMPLETED, BackupPhase.VALIDATING}
)


@dataclass(frozen=True)
class BackupRecord:
    name: str
    created: dt.datetime
    phase: str


def newest_validated(records: Sequence[BackupRecord]) -> BackupRecord | None:
    valid = [r for r in records if r.phase == BackupPhase.VALIDATED]
    return max(valid, key=lambda r: (r.created, r.name), default=None)


def select_for_deletion(
    records: Sequence[BackupRecord], retention: RetentionSpec, now: dt.datetime
) -> list[str]:
    """Names of the backups to delete now, oldest first."""
    protected = newest_validated(records)
    ordered = sorted(records, key=lambda r: (r.created, r.name), reverse=True)
    doomed = []
    for position, record in enumerate(ordered):
        if record.phase in IN_FLIGHT or record is protected:
            continue
        too_many = retention.keep_last is not None and position >= retention.keep_last
        too_old = (
            retention.max_age_seconds is not None
            and (now - record.created).total_seconds() > retention.max_age_seconds
        )
        if too_many or too_old:
            doomed.append(record)
    return [r.name for r in sorted(doomed, key=lambda r: (r.created, r.name))]
