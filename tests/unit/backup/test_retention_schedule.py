"""Retention and schedule decisions (pure)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kongmasker.api.backup import RetentionSpec
from kongmasker.core.backup.retention import BackupRecord, newest_validated, select_for_deletion
from kongmasker.core.backup.schedule import check_cron, child_name, decide
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def rec(i: int, phase: str = "Validated") -> BackupRecord:
    return BackupRecord(f"b{i}", T0 + dt.timedelta(hours=i), phase)


def test_keep_last_deletes_the_oldest_first():
    records = [rec(i) for i in range(5)]
    assert select_for_deletion(records, RetentionSpec(keep_last=2), T0) == ["b0", "b1", "b2"]


def test_max_age_deletes_only_older_backups():
    records = [rec(i) for i in range(5)]
    now = T0 + dt.timedelta(hours=4, minutes=30)
    assert select_for_deletion(records, RetentionSpec(max_age_seconds=3 * 3600), now) == [
        "b0",
        "b1",
    ]


def test_both_limits_apply():
    records = [rec(i) for i in range(5)]
    now = T0 + dt.timedelta(hours=4, minutes=30)
    spec = RetentionSpec(keep_last=4, max_age_seconds=2 * 3600)
    assert select_for_deletion(records, spec, now) == ["b0", "b1", "b2"]


def test_newest_validated_survives_when_later_backups_failed():
    records = [rec(0), rec(1), rec(2, "Failed"), rec(3, "Invalid"), rec(4, "Failed")]
    doomed = select_for_deletion(records, RetentionSpec(keep_last=1), T0 + dt.timedelta(days=30))
    assert "b1" not in doomed
    assert doomed == ["b0", "b2", "b3"]


def test_in_flight_backups_are_never_deleted():
    records = [rec(0, "InProgress"), rec(1, "New"), rec(2)]
    assert select_for_deletion(records, RetentionSpec(keep_last=1), T0) == []


def test_no_limits_keeps_everything():
    assert select_for_deletion([rec(i) for i in range(3)], RetentionSpec(), T0) == []


phases = st.sampled_from(["Validated", "Invalid", "Failed", "InProgress", "Completed"])


@given(
    st.lists(phases, max_size=12),
    st.one_of(st.none(), st.integers(0, 5)),
    st.one_of(st.none(), st.integers(0, 20 * 3600)),
)
def test_retention_invariants(phase_list, keep_last, max_age):
    records = [rec(i, p) for i, p in enumerate(phase_list)]
    now = T0 + dt.timedelta(hours=len(records) + 1)
    doomed = set(select_for_deletion(records, RetentionSpec(keep_last, max_age), now))
    newest = newest_validated(records)
    if newest is not None:
        assert newest.name not in doomed
    assert all(r.name not in doomed for r in records if r.phase in ("InProgress", "Completed"))
    if keep_last is None and max_age is None:
        assert not doomed


def test_schedule_is_due_once_for_the_latest_missed_time():
    cron = "0 * * * *"
    now = T0 + dt.timedelta(hours=3, minutes=10)
    d = decide(cron, None, T0 - dt.timedelta(minutes=1), now)
    assert d.due == T0 + dt.timedelta(hours=3)
    assert d.next == T0 + dt.timedelta(hours=4)
    again = decide(cron, d.due, T0, now)
    assert again.due is None
    assert again.wait_seconds(now) == 50 * 60


def test_six_field_cron_has_seconds():
    d = decide("* * * * * */10", T0, T0, T0 + dt.timedelta(seconds=25))
    assert d.due == T0 + dt.timedelta(seconds=20)


@pytest.mark.parametrize("cron", ["", "* * *", "61 * * * *", "nonsense here and there too"])
def test_bad_cron_is_rejected(cron):
    with pytest.raises(InvalidSpec):
        check_cron(cron)


def test_child_names_fit_a_kubernetes_name():
    name = child_name("x" * 80, T0)
    assert len(name) <= 63 and name.endswith("-20261126120000")
    assert child_name("nightly", T0) == "nightly-20261126120000"
