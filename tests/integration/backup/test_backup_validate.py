"""Backups of a real Redis (100k masking mappings, AOF on, password) into a directory store,
and validation of good, corrupted, truncated and tampered backups with a real throwaway
Redis load. Runs against the real dockerd; nothing is mocked."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from tests.integration.backup.conftest import PASSWORD, RedisStack
from tests.integration.backup.mappings import fill_mappings

from kongmasker.adapters.storage import DirectoryStore
from kongmasker.api.backup import BackupReason
from kongmasker.core.backup.create import BackupJob, SecretInBackup
from kongmasker.core.backup.manifest import RDB_PATH, STACK_SPEC, Identity, Manifest
from kongmasker.core.backup.rdb import parse_header
from kongmasker.core.backup.validate import validate_backup

pytestmark = pytest.mark.integration

N = 100_000


def backup(
    stack: RedisStack, store: DirectoryStore, name: str = "b1", spec_doc: dict | None = None
) -> Manifest:
    ref = stack.target.ref
    job = BackupJob(
        runtime=stack.runtime,
        store=store,
        target=stack.target,
        backup=Identity(ref.namespace, name, "uid-" + name),
        location=f"{ref.namespace}/{ref.name}/{name}",
        spec_doc=spec_doc or {"upstream": {"url": "http://127.0.0.1:9"}},
        secret_values=[PASSWORD],
    )
    return job.run()


@pytest.fixture(scope="module")
def filled(runtime):  # one stack with 100k mappings shared by the read-only tests
    from tests.integration.backup.conftest import make_stack

    stack = make_stack(runtime)
    expected = fill_mappings(stack.client, N)
    yield stack, expected
    stack.remove()


@pytest.fixture(scope="module")
def good(filled, tmp_path_factory):
    stack, expected = filled
    store = DirectoryStore(tmp_path_factory.mktemp("store"))
    manifest = backup(stack, store)
    return stack, expected, store, manifest


def location(m: Manifest) -> str:
    return f"{m.stack.namespace}/{m.stack.name}/{m.backup.name}"


def test_manifest_counts_every_prefix_and_ttl_class(good):
    _stack, expected, _store, m = good
    assert {p: s.keys for p, s in m.redis.prefixes.items()} == expected
    assert m.redis.declared_keys == sum(expected.values())
    assert m.redis.version.startswith("7.")
    maps = m.redis.prefixes["aws_masker:map:"].ttl
    # TTLS = 7d-1m, 1d-1m, 50m in turn: three classes, a third each (rounded).
    assert maps == {"lt7d": 33334, "lt1d": 33333, "lt1h": 33333}
    assert m.redis.prefixes["aws_masker:cnt:"].ttl == {"persistent": 5}


def test_files_match_their_checksums_and_hold_no_secret(good):
    _stack, expected, store, m = good
    root = Path(store.root) / location(m)
    assert {f.path for f in m.files} == {
        RDB_PATH,
        "config/kong.yml",
        "config/nginx.conf",
        STACK_SPEC,
    }
    for entry in m.files:
        assert (root / entry.path).stat().st_size == entry.size
    for path in root.rglob("*"):
        if path.is_file() and path.name != "dump.rdb":
            assert PASSWORD.encode() not in path.read_bytes(), path
    kong = (root / "config/kong.yml").read_text()
    assert "{vault://env/redis-password}" in kong
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk["redis"]["keys"] == sum(expected.values())


def test_good_backup_validates(good):
    stack, expected, store, m = good
    verdict = validate_backup(stack.runtime, store, location(m))
    assert verdict.valid, verdict.message
    assert verdict.keys == sum(expected.values())


def copy_backup(store: DirectoryStore, m: Manifest, tmp_path: Path) -> tuple[DirectoryStore, Path]:
    """A private copy of the good backup that a test may damage."""
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(Path(store.root), dst)
    return DirectoryStore(dst), dst / location(m)


def rewrite_manifest(root: Path, change) -> None:
    raw = json.loads((root / "manifest.json").read_text())
    change(raw)
    (root / "manifest.json").write_text(json.dumps(raw))


def test_corrupted_rdb_is_invalid(good, tmp_path):
    stack, _, store, m = good
    copy, root = copy_backup(store, m, tmp_path)
    rdb = bytearray((root / RDB_PATH).read_bytes())
    rdb[len(rdb) // 2] ^= 0xFF
    (root / RDB_PATH).write_bytes(bytes(rdb))
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert not verdict.valid
    assert verdict.reason is BackupReason.CHECKSUM_MISMATCH
    assert RDB_PATH in verdict.message


def test_truncated_rdb_is_invalid(good, tmp_path):
    stack, _, store, m = good
    copy, root = copy_backup(store, m, tmp_path)
    data = (root / RDB_PATH).read_bytes()
    (root / RDB_PATH).write_bytes(data[: len(data) // 3])
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert not verdict.valid
    assert verdict.reason is BackupReason.CHECKSUM_MISMATCH
    assert "truncated" in verdict.message


def test_tampered_rdb_with_matching_manifest_fails_the_real_load(good, tmp_path):
    """Checksums updated by the tamperer: only Redis's own load (RDB CRC64) can tell."""
    import hashlib

    stack, _, store, m = good
    copy, root = copy_backup(store, m, tmp_path)
    rdb = bytearray((root / RDB_PATH).read_bytes())
    rdb[len(rdb) - 200] ^= 0x01
    (root / RDB_PATH).write_bytes(bytes(rdb))

    def fix(raw):
        for f in raw["files"]:
            if f["path"] == RDB_PATH:
                f["sha256"] = hashlib.sha256(bytes(rdb)).hexdigest()

    rewrite_manifest(root, fix)
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert not verdict.valid
    assert verdict.reason is BackupReason.RDB_UNLOADABLE, verdict.message


def test_tampered_key_counts_are_invalid(good, tmp_path):
    stack, _, store, m = good
    copy, root = copy_backup(store, m, tmp_path)

    def fix(raw):
        raw["redis"]["prefixes"]["aws_masker:map:"]["keys"] += 7
        raw["redis"]["prefixes"]["aws_masker:map:"]["ttl"]["lt7d"] += 7

    rewrite_manifest(root, fix)
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert not verdict.valid
    assert verdict.reason is BackupReason.KEY_COUNT_MISMATCH
    assert "aws_masker:map:" in verdict.message


def test_missing_file_and_garbage_manifest_are_invalid(good, tmp_path):
    stack, _, store, m = good
    copy, root = copy_backup(store, m, tmp_path)
    (root / "config/kong.yml").unlink()
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert (verdict.valid, verdict.reason) == (False, BackupReason.FILE_MISSING)
    (root / "manifest.json").write_text("{not json")
    verdict = validate_backup(stack.runtime, copy, location(m))
    assert (verdict.valid, verdict.reason) == (False, BackupReason.MANIFEST_INVALID)


def test_snapshot_is_consistent_while_clients_write(redis_stack, tmp_path):
    """Writers run during the backup; the RDB is one fork-time image: the count Redis
    declares in it equals the keys the throwaway load found, and every counter's value
    matches the number of its keys (each write adds a key and bumps the counter atomically)."""
    import redis as redislib

    client = redis_stack.client
    fill_mappings(client, 20_000, seed="w")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        c = redislib.Redis(
            host="127.0.0.1", port=redis_stack.target.spec.redis.port, password=PASSWORD
        )
        while not stop.is_set():
            n = written[0]
            pipe = c.pipeline(transaction=True)
            pipe.set(f"aws_masker:map:LIVE_{n:07d}", "x", ex=3600)
            pipe.incr("aws_masker:cnt:live")
            pipe.execute()
            written[0] += 1
        c.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        store = DirectoryStore(tmp_path)
        m = backup(redis_stack, store, "live")
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    live = m.redis.prefixes.get("aws_masker:map:").keys - 20_000
    header = parse_header((tmp_path / location(m) / RDB_PATH).read_bytes())
    assert header.declared_keys == m.redis.keys
    verdict = validate_backup(redis_stack.runtime, store, location(m))
    assert verdict.valid, verdict.message
    # The counter inside the snapshot equals the LIVE keys inside it: one atomic image.
    from kongmasker.core.backup.rediscli import ScratchRedis

    rdb = (tmp_path / location(m) / RDB_PATH).read_bytes()
    with ScratchRedis(
        redis_stack.runtime, "kongmasker/redis:dev", "count", files={"/data/dump.rdb": rdb}
    ) as s:
        assert int(s.redis.call("GET", "aws_masker:cnt:live") or 0) == live


def test_secrets_are_redacted_from_spec_and_refused_in_configs(redis_stack, tmp_path, monkeypatch):
    store = DirectoryStore(tmp_path)
    doc = {
        "upstream": {"url": "http://127.0.0.1:9"},
        "kong": {
            "env": [{"name": "MY_API_KEY", "value": "abcd-1234"}, {"name": "X", "value": "y"}]
        },
        "backend": {"env": [{"name": "PLAIN", "value": PASSWORD}]},
    }
    m = backup(redis_stack, store, "redact", spec_doc=doc)
    saved = yaml.safe_load((tmp_path / location(m) / STACK_SPEC).read_text())
    assert saved["kong"]["env"][0]["value"] == "<redacted>"
    assert saved["kong"]["env"][1]["value"] == "y"
    assert saved["backend"]["env"][0]["value"] == "<redacted>"
    # A Secret value inside a live config (e.g. pasted in by hand) refuses the backup.
    # (The live config is swapped for one holding the password: the only stand-in here.)
    from kongmasker.core.backup import create

    leaked = {"config/kong.yml": f"password: {PASSWORD}".encode()}
    monkeypatch.setattr(create, "live_configs", lambda rt, t: leaked)
    with pytest.raises(SecretInBackup):
        backup(redis_stack, store, "refused")
    assert not (tmp_path / redis_stack.target.ref.namespace / "demo" / "refused").exists()


def test_signed_backup_resists_a_consistent_forgery(filled, tmp_path, runtime):
    """A forger swaps in a different, perfectly valid RDB and rewrites every checksum, size
    and count in the manifest: only the signature (key from a Secret) can tell."""
    import hashlib
    import shutil

    from tests.integration.backup.conftest import make_stack

    (
        stack,
        _,
    ) = filled
    key = b"backup-signing-key-0123456789abcdef"
    store = DirectoryStore(tmp_path / "store")
    ref = stack.target.ref
    where = f"{ref.namespace}/{ref.name}/signed"
    BackupJob(stack.runtime, store, stack.target, Identity(ref.namespace, "signed"), where,
              {"upstream": {"url": "x"}}, [PASSWORD], signing_key=key).run()  # fmt: skip
    assert validate_backup(runtime, store, where, signing_key=key).valid
    wrong = validate_backup(runtime, store, where, signing_key=b"another key")
    assert (wrong.valid, wrong.reason) == (False, BackupReason.SIGNATURE_MISMATCH)

    other = make_stack(runtime, name="forger")
    try:
        fill_mappings(other.client, 1000, seed="forged")
        fake = backup(other, DirectoryStore(tmp_path / "fake"), "fake")
    finally:
        other.remove()
    root = tmp_path / "store" / where
    shutil.copy(tmp_path / "fake" / location(fake) / RDB_PATH, root / RDB_PATH)
    forged_rdb = (root / RDB_PATH).read_bytes()

    def forge(raw):
        raw["redis"] = fake.to_dict()["redis"]
        for f in raw["files"]:
            if f["path"] == RDB_PATH:
                f["size"], f["sha256"] = len(forged_rdb), hashlib.sha256(forged_rdb).hexdigest()

    rewrite_manifest(root, forge)
    assert validate_backup(runtime, store, where).valid  # consistent: no key, no way to tell
    verdict = validate_backup(runtime, store, where, signing_key=key)
    assert (verdict.valid, verdict.reason) == (False, BackupReason.SIGNATURE_MISMATCH)
