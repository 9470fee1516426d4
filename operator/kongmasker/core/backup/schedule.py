"""Schedules: when a cron is due, and the name of the backup it creates. Pure (croniter).

A schedule creates at most one backup per check, for the latest cron time that has passed
since the last one it created (missed times while the operator was down are not replayed,
as a Kubernetes CronJob with a short deadline behaves). Five fields are standard cron; a
sixth field is seconds (croniter's convention), useful in tests.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from croniter import CroniterBadCronError, croniter

from kongmasker.api.backup import BackupReason
from kongmasker.errors import InvalidSpec


def check_cron(cron: str) -> None:
    """Raise InvalidSpec unless `cron` is a valid 5- or 6-field expression."""
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise InvalidSpec(f"cron {cron!r} must have 5 fields (or 6 with seconds)")
    try:
        croniter(cron)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidSpec(f"cron {cron!r} is invalid: {exc}") from exc


INTERVAL_SAMPLES = 2000
"""Consecutive firings examined for the shortest gap: more than a day of a cron that fires
every minute, so a cron that is dense only at some hour of the day is caught."""
_SAMPLE_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def check_interval(cron: str, minimum: float) -> None:
    """Raise InvalidSpec (ScheduleTooFrequent) if two firings of `cron` can be closer than
    `minimum` seconds."""
    gap = shortest_gap(cron)
    if gap < minimum:
        raise InvalidSpec(
            f"spec.schedule.cron {cron!r} fires {gap:.0f}s apart, more often than the "
            f"operator's minimum of {minimum:.0f}s between backups; use a sparser cron "
            "(the minimum is the operator setting KONGMASKER_BACKUP_MIN_SCHEDULE_INTERVAL)",
            reason=BackupReason.SCHEDULE_TOO_FREQUENT,
        )


@functools.lru_cache(maxsize=256)
def shortest_gap(cron: str) -> float:
    """Shortest time between two consecutive firings of a valid `cron`, in seconds (cached:
    every schedule tick asks)."""
    it = croniter(cron, _SAMPLE_START)
    previous: dt.datetime = it.get_next(dt.datetime)
    best = float("inf")
    for _ in range(INTERVAL_SAMPLES):
        current: dt.datetime = it.get_next(dt.datetime)
        best = min(best, (current - previous).total_seconds())
        previous = current
    return best


@dataclass(frozen=True)
class Decision:
    due: dt.datetime | None
    """The cron time to take a backup for now, or None."""
    next: dt.datetime
    """The next cron time after now."""

    def wait_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (self.next - now).total_seconds())


def decide(cron: str, last: dt.datetime | None, created: dt.datetime, now: dt.datetime) -> Decision:
    """Is a backup due at `now`, given the last scheduled time (or the schedule's creation)?"""
    check_cron(cron)
    base = last or created
    it = croniter(cron, base)
    due = None
    candidate: dt.datetime = it.get_next(dt.datetime)
    while candidate <= now:
        due = candidate
        candidate = it.get_next(dt.datetime)
    return Decision(due=due, next=candidate)


def child_name(schedule: str, when: dt.datetime) -> str:
    """`<schedule>-<YYYYMMDDHHMMSS>`, the schedule part cut so the whole fits 63 chars."""
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{schedule[: 63 - len(stamp) - 1].rstrip('-')}-{stamp}"
