"""Schedules: when a cron is due, and the name of the backup it creates. Pure (croniter).

A schedule creates at most one backup per check, for the latest cron time that has passed
since the last one it created (missed times while the operator was down are not replayed,
as a Kubernetes CronJob with a short deadline behaves). Five fields are standard cron; a
sixth field is seconds (croniter's convention), useful in tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import CroniterBadCronError, croniter

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
