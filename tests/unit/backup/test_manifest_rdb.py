"""Manifest model, count comparison, RDB header parsing and the StackBackup spec model."""

from __future__ import annotations

import hashlib
import struct

import pytest

from kongmasker.api.backup import BackupSpec, BackupType, human_size, parse_duration
from kongmasker.core.backup.create import SecretInBackup, assert_no_secrets, redact_spec
from kongmasker.core.backup.manifest import (
    FileEntry,
    Identity,
    Manifest,
    PrefixStats,
    RedisFacts,
    compare_counts,
    ttl_class,
)
from kongmasker.core.backup.rdb import RdbFormatError, parse_header
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit


def manifest() -> Manifest:
    return Manifest(
        backup=Identity("ns", "b1", "u1"),
        stack=Identity("ns", "demo", "u2", 3),
        started_at="2026-11-26T12:00:00Z",
        completed_at="2026-11-26T12:00:02Z",
        duration_seconds=2.0,
        redis=RedisFacts(
            "7.0.15", "kongmasker/redis:dev", 10, 0, 3, {"a:b:": PrefixStats(3, {"lt1h": 3})}
        ),
        files=(FileEntry.of("redis/dump.rdb", b"REDIS0010"),),
    )


def test_manifest_round_trips_through_json():
    m = manifest()
    assert Manifest.from_json(m.to_json()) == m
    assert m.size == 9
    assert m.files[0].sha256 == hashlib.sha256(b"REDIS0010").hexdigest()


@pytest.mark.parametrize(
    "data", [b"{}", b"not json", b'{"formatVersion": 99}', b'{"formatVersion": 1, "files": 3}']
)
def test_malformed_manifests_raise_value_error(data):
    with pytest.raises(ValueError):
        Manifest.from_json(data)


@pytest.mark.parametrize(
    ("pttl", "cls"),
    [(-1, "persistent"), (0, "lt1m"), (59_999, "lt1m"), (60_000, "lt1h"), (604_799_000, "lt7d")],
)
def test_ttl_classes(pttl, cls):
    assert ttl_class(pttl) == cls
    assert ttl_class(40 * 86400 * 1000) == "gte30d"


def test_compare_counts_allows_only_keys_that_may_have_expired():
    want = {"m:": PrefixStats(10, {"lt1m": 2, "lt1d": 3, "persistent": 5})}
    assert compare_counts(want, {"m:": PrefixStats(10)}, 0) == []
    assert compare_counts(want, {"m:": PrefixStats(8)}, 30) == []  # lt1m may be gone
    assert compare_counts(want, {"m:": PrefixStats(7)}, 30)  # one too many missing
    assert compare_counts(want, {"m:": PrefixStats(5)}, 7200) == []  # lt1d too, later
    assert compare_counts(want, {"m:": PrefixStats(11)}, 0)  # never more
    assert compare_counts(want, {"m:": PrefixStats(10), "x:": PrefixStats(1)}, 0)


def _string(s: bytes) -> bytes:
    return bytes([len(s)]) + s


def test_rdb_header_reads_aux_and_resizedb():
    data = (
        b"REDIS0010"
        + b"\xfa" + _string(b"redis-ver") + _string(b"7.0.15")
        + b"\xfa" + _string(b"ctime") + b"\xc2" + struct.pack("<i", 1_790_000_000)
        + b"\xfe\x00"
        + b"\xfb" + b"\x80" + struct.pack(">I", 200_006) + b"\x40\x10"
        + b"\x00" + _string(b"k") + _string(b"v")
    )  # fmt: skip
    header = parse_header(data)
    assert header.version == 10 and header.redis_version == "7.0.15"
    assert header.created == 1_790_000_000
    assert header.keys_by_db == {0: 200_006} and header.expires_by_db == {0: 16}


@pytest.mark.parametrize("data", [b"", b"HELLO0010", b"REDIS0010\xfa\x09redis-v"])
def test_non_rdb_bytes_are_rejected(data):
    with pytest.raises(RdbFormatError):
        parse_header(data)


def test_backup_spec_types():
    sched = BackupSpec.from_dict(
        {
            "stackRef": {"name": "demo"},
            "type": "Schedule",
            "schedule": {"cron": "0 3 * * *", "retention": {"keepLast": 7, "maxAge": "30d"}},
            "storage": {"s3": {"bucket": "b", "endpoint": "http://127.0.0.1:9000"}},
        }
    )
    assert sched.type is BackupType.SCHEDULE
    assert sched.schedule.retention.keep_last == 7
    assert sched.schedule.retention.max_age_seconds == 30 * 86400
    assert sched.storage.kind == "s3"
    with pytest.raises(InvalidSpec):
        BackupSpec.from_dict({"stackRef": {"name": "demo"}, "type": "Restore"})
    with pytest.raises(InvalidSpec):
        BackupSpec.from_dict({"type": "Backup"})


def test_durations_and_sizes():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2w") == 14 * 86400
    with pytest.raises(InvalidSpec):
        parse_duration("5 days")
    assert human_size(512) == "512"
    assert human_size(3 * 1024 * 1024) == "3.0Mi"


def test_redaction_and_secret_guard():
    doc = {"kong": {"env": [{"name": "DB_PASSWORD", "value": "x"}, {"name": "A", "value": "pw12"}]}}
    clean = redact_spec(doc, ["pw12"])
    assert clean["kong"]["env"] == [
        {"name": "DB_PASSWORD", "value": "<redacted>"},
        {"name": "A", "value": "<redacted>"},
    ]
    assert_no_secrets({"redis/dump.rdb": b"pw12", "config/x": b"clean"}, ["pw12"])
    with pytest.raises(SecretInBackup):
        assert_no_secrets({"config/x": b"has pw12"}, ["pw12"])


def test_signature_covers_every_field():
    key = b"k" * 32
    signed = manifest().sign(key)
    assert signed.signature_valid(key) and not signed.signature_valid(b"other")
    again = Manifest.from_json(signed.to_json())
    assert again == signed and again.signature_valid(key)
    import dataclasses

    moved = dataclasses.replace(signed, completed_at="2026-11-26T12:00:03Z")
    assert not moved.signature_valid(key)
    assert not manifest().signature_valid(key)  # unsigned
