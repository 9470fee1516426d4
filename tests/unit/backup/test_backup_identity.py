"""The manifest binds the backup's identity (issue 11): an older backup's files copied under
a newer backup's name are refused, signed or not. The store is the real DirectoryStore on a
temporary directory; the identity check comes before any file is loaded into Redis, so no
engine is needed (tests/e2e/test_isolation.py replays through the whole operator)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kongmasker.adapters.storage import DirectoryStore
from kongmasker.api.backup import MANIFEST_NAME, BackupReason
from kongmasker.core.backup.manifest import FileEntry, Identity, Manifest, RedisFacts
from kongmasker.core.backup.validate import Expected, validate_backup

pytestmark = pytest.mark.unit

KEY = b"backup-signing-key"
CREATED_NEW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _manifest(name: str, uid: str, started: str, stack_uid: str = "stack-uid-1") -> Manifest:
    return Manifest(
        backup=Identity("team", name, uid),
        stack=Identity("team", "demo", stack_uid, 3),
        started_at=started,
        completed_at=started,
        duration_seconds=1.0,
        redis=RedisFacts("7.0.15", "kongmasker/redis:dev", 10, 0, 0, {}),
        files=(FileEntry.of("redis/dump.rdb", b""),),
    )


NEW = Expected("team", "nightly-2", "uid-2", "demo", "stack-uid-1", CREATED_NEW)


class NoEngine:
    """Validation must decide before it needs an engine: any call is a test failure."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the engine was used ({name}) before the identity was checked")


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_an_older_backups_files_under_a_newer_name_are_refused(
    tmp_path: Path, signed: bool
) -> None:
    old = _manifest("nightly-1", "uid-1", "2026-11-30T12:00:00Z")
    if signed:
        old = old.sign(KEY)
        assert old.signature_valid(KEY)  # a genuine signature, just of another backup
    store = DirectoryStore(tmp_path)
    store.put(f"team/demo/nightly-2/{MANIFEST_NAME}", old.to_json())
    store.put("team/demo/nightly-2/redis/dump.rdb", b"")
    verdict = validate_backup(
        NoEngine(),  # type: ignore[arg-type]
        store,
        "team/demo/nightly-2",
        signing_key=KEY if signed else None,
        expect=NEW,
    )
    assert not verdict.valid
    assert verdict.reason == BackupReason.IDENTITY_MISMATCH
    assert "team/nightly-1" in verdict.message and "uid-1" in verdict.message
    assert verdict.files == {}


def test_each_bound_fact_is_checked() -> None:
    good = _manifest("nightly-2", "uid-2", "2026-12-01T12:00:01Z")
    assert NEW.mismatches(good) == []
    assert NEW.mismatches(_manifest("nightly-2", "uid-X", "2026-12-01T12:00:01Z"))  # re-created
    assert NEW.mismatches(_manifest("nightly-2", "uid-2", "2026-12-01T12:00:01Z", "other-stack"))
    early = NEW.mismatches(_manifest("nightly-2", "uid-2", "2026-12-01T11:00:00Z"))
    assert early and "before this StackBackup was created" in early[0]
    skew = _manifest("nightly-2", "uid-2", "2026-12-01T11:58:00Z")  # clocks 2 min apart
    assert NEW.mismatches(skew) == []
