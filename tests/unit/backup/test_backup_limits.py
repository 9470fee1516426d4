"""Limits the operator's administrator sets on StackBackups (issue 11): directory storage
only below configured roots (never `..`), and a minimum interval between scheduled backups.
The controller runs on the in-memory API of test_controller.py; the store factory records
whether a store was ever opened (a refused path must not reach the host)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.unit.backup.test_controller import T0, FakeApi, schedule, tick

from kongmasker.api.backup import BackupReason
from kongmasker.config import BackupSettings, Settings
from kongmasker.core.backup import controller as core
from kongmasker.core.backup.schedule import check_interval, shortest_gap
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit
ROOTS = ("/srv/kongmasker/backups", "/data/backups")


@pytest.mark.parametrize(
    "path",
    [
        "/srv/kongmasker/backups/../../../etc",
        "/srv/kongmasker/backups/team/../other",
        "/srv/kongmasker/backups/..",
        "/etc",
        "/srv/kongmasker/backups-evil",  # a sibling sharing the prefix is not inside
        "/srv/kongmasker",
        "relative/path",
        "/",
    ],
)
def test_paths_outside_the_roots_or_with_dotdot_are_refused(path: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        core.allowed_directory(path, ROOTS)
    assert err.value.reason == BackupReason.DIRECTORY_NOT_ALLOWED
    assert err.value.message.startswith("spec.storage.directory.path")
    assert "/srv/kongmasker/backups" in err.value.message  # says where it may go


@pytest.mark.parametrize(
    "path", ["/srv/kongmasker/backups", "/srv/kongmasker/backups/team-a/", "/data/backups/x"]
)
def test_paths_below_a_root_are_allowed(path: str) -> None:
    assert core.allowed_directory(path, ROOTS) == path.rstrip("/")


def test_the_default_root_is_the_default_directory() -> None:
    from kongmasker.api.backup import DEFAULT_DIRECTORY

    assert core.allowed_directory(DEFAULT_DIRECTORY, BackupSettings().directory_roots)


def test_open_store_refuses_before_the_store_is_made(tmp_path: Path) -> None:
    opened: list[Any] = []
    deps = core.BackupDeps(
        runtime_for=None,  # type: ignore[arg-type]
        secrets=None,  # type: ignore[arg-type]
        stacks=None,  # type: ignore[arg-type]
        api=FakeApi(),
        probes=None,  # type: ignore[arg-type]
        settings=Settings(backup=BackupSettings(directory_roots=ROOTS)),
        store_for=lambda *args: opened.append(args),  # type: ignore[arg-type,return-value]
    )
    from kongmasker.api.backup import StorageSpec

    with pytest.raises(InvalidSpec):
        deps.open_store(StorageSpec(directory="/tmp/../etc"), "ns", lambda: None)  # type: ignore[arg-type,return-value]
    assert opened == []


def test_shortest_gap_of_common_crons() -> None:
    assert shortest_gap("*/5 * * * *") == 300
    assert shortest_gap("0 3 * * *") == 86400
    assert shortest_gap("0,1 3 * * *") == 60  # dense only once a day: still found
    assert shortest_gap("* * * * * */10") == 10


def test_a_too_frequent_cron_is_refused_naming_the_field() -> None:
    check_interval("*/5 * * * *", 300)
    with pytest.raises(InvalidSpec) as err:
        check_interval("* * * * * *", 300)
    assert err.value.reason == BackupReason.SCHEDULE_TOO_FREQUENT
    assert err.value.message.startswith("spec.schedule.cron")
    assert "minimum of 300s" in err.value.message


def test_a_too_frequent_schedule_creates_no_backup(tmp_path: Path) -> None:
    api = FakeApi()
    schedule(api, cron="* * * * * */1")
    reasons = tick(api, tmp_path, T0 + dt.timedelta(seconds=30))
    assert [o for o in api.objects if o != "nightly"] == []  # no child
    status = api.objects["nightly"]["status"]
    assert status["phase"] == "Failed"
    assert "spec.schedule.cron" in status["failureReason"]
    assert BackupReason.SCHEDULE_TOO_FREQUENT in reasons or any(
        c.get("reason") == BackupReason.SCHEDULE_TOO_FREQUENT for c in status["conditions"]
    )


def test_a_deleted_schedule_applies_its_retention_and_leaves_no_orphan_files(
    tmp_path: Path,
) -> None:
    from tests.unit.backup.test_controller import deps

    from kongmasker.adapters.storage import DirectoryStore

    api = FakeApi()
    schedule(api, keepLast=1)
    store = DirectoryStore(tmp_path)
    parent = core.BackupObject.from_body(api.objects["nightly"])
    parent_spec = core.BackupSpec.from_dict(parent.spec)
    names = []
    for i, phase in enumerate(["Validated", "Failed", "Failed"]):
        at = T0 + dt.timedelta(hours=i)
        api.create_backup("ns", core.child_body(parent, parent_spec, at))
        name = f"nightly-{at:%Y%m%d%H%M%S}"
        names.append(name)
        api.objects[name]["metadata"]["creationTimestamp"] = core.now_iso(at)
        api.objects[name]["status"] = {"phase": phase}
        store.put(f"ns/demo/{name}/manifest.json", b"{}")
    events = core.schedule_deleted(parent, deps(api, tmp_path), T0 + dt.timedelta(hours=3))
    # keepLast 1 keeps the newest, and the newest Validated is always kept; the rest goes.
    assert set(api.objects) == {"nightly", names[0], names[2]}
    assert not (tmp_path / f"ns/demo/{names[1]}").exists()
    for kept in (names[0], names[2]):
        meta = api.objects[kept]["metadata"]
        assert "ownerReferences" not in meta, "garbage collection must not take it"
        assert "kongmasker.io/schedule" not in meta["labels"]
        assert (tmp_path / f"ns/demo/{kept}/manifest.json").exists()
    assert [e.reason for e in events] == ["RetentionDeleted", "RetentionDeleted"]
