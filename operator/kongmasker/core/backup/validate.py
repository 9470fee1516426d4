"""Validating a stored backup: the manifest, every file's size and sha256, the RDB header
against the manifest, then a real load into a throwaway Redis of the same image and its
key counts against the manifest's. The first failing step gives the verdict's reason.

    manifest parses ............ else ManifestInvalid
    signature verifies ......... else SignatureMismatch (when a signing key is configured)
    identity = this StackBackup  else IdentityMismatch (signed or not: backup namespace, name,
                                  uid, stack, stack uid, not taken before the object existed)
    every file present ......... else FileMissing
    sizes and sha256 match ..... else ChecksumMismatch (a truncated file says so)
    RDB header = manifest ...... else ManifestInvalid (version, declared key count)
    throwaway Redis loads it ... else RdbUnloadable (Redis's own message: CRC, short read)
    key counts = manifest ...... else KeyCountMismatch (allowing keys whose TTL ran out)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kongmasker.adapters.runtime import Runtime
from kongmasker.adapters.storage import BackupStore
from kongmasker.api.backup import MANIFEST_NAME, BackupReason
from kongmasker.core.backup.create import count_rdb
from kongmasker.core.backup.manifest import RDB_PATH, KeyCounts, Manifest, compare_counts
from kongmasker.core.backup.rdb import RdbFormatError, parse_header
from kongmasker.errors import KongMaskerError, NotFound

CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far the operator's clock (startedAt) may be behind the API server's (creationTimestamp)."""


@dataclass(frozen=True)
class Expected:
    """The StackBackup whose files are being validated: its manifest must say so. Without
    this, an older backup's files copied under a newer backup's name (a replay) would pass,
    a signed one included (its signature is genuine, just for another backup)."""

    namespace: str
    name: str
    uid: str
    stack: str
    stack_uid: str = ""
    """The stack's uid recorded when the backup was taken (empty: not recorded)."""
    created: dt.datetime | None = None
    """The StackBackup's creationTimestamp: its snapshot cannot be older."""

    def mismatches(self, manifest: Manifest) -> list[str]:
        b, s = manifest.backup, manifest.stack
        out = []
        if (b.namespace, b.name) != (self.namespace, self.name):
            out.append(f"it is backup {b.namespace}/{b.name}")
        if b.uid != self.uid:
            out.append(f"backup uid {b.uid or '(none)'} is not this StackBackup's ({self.uid})")
        if (s.namespace, s.name) != (self.namespace, self.stack):
            out.append(f"it is of stack {s.namespace}/{s.name}, not {self.namespace}/{self.stack}")
        if self.stack_uid and s.uid != self.stack_uid:
            out.append(f"stack uid {s.uid or '(none)'} is not the recorded {self.stack_uid}")
        if self.created is not None:
            try:
                taken = _parse_time(manifest.started_at)
            except ValueError:
                out.append(f"startedAt {manifest.started_at!r} is not a time")
            else:
                if taken < self.created - CLOCK_SKEW:
                    out.append(
                        f"taken at {manifest.started_at}, before this StackBackup was created"
                    )
        return out


@dataclass
class Verdict:
    """The outcome of one validation. `files` holds the verified contents when valid, so a
    restore uses exactly the bytes that were checked."""

    valid: bool
    reason: BackupReason
    message: str
    manifest: Manifest | None = None
    counts: KeyCounts = field(default_factory=dict)
    seconds: float = 0.0
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def keys(self) -> int:
        return sum(p.keys for p in self.counts.values())


def validate_backup(
    runtime: Runtime,
    store: BackupStore,
    location: str,
    *,
    image: str = "",
    signing_key: bytes | None = None,
    expect: Expected | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Verdict:
    """Validate the backup stored under `location`. `image` (a Redis image) is used if the
    manifest's image is not on the Docker host. With `signing_key`, the manifest must carry
    a signature made with it (else SignatureMismatch). With `expect`, the manifest must name
    that StackBackup (else IdentityMismatch); every caller in the operator passes it."""
    started = time.monotonic()
    verdict = _validate(runtime, store, location, image, signing_key, expect, now)
    verdict.seconds = time.monotonic() - started
    if not verdict.valid:
        verdict.files = {}
    return verdict


def _invalid(reason: BackupReason, message: str, manifest: Manifest | None = None) -> Verdict:
    return Verdict(False, reason, message, manifest)


def _validate(
    runtime: Runtime,
    store: BackupStore,
    location: str,
    image: str,
    signing_key: bytes | None,
    expect: Expected | None,
    now: Callable[[], dt.datetime],
) -> Verdict:
    try:
        manifest = Manifest.from_json(store.get(f"{location}/{MANIFEST_NAME}"))
    except NotFound:
        return _invalid(BackupReason.FILE_MISSING, f"{MANIFEST_NAME} is missing")
    except ValueError as exc:
        return _invalid(BackupReason.MANIFEST_INVALID, str(exc))
    if signing_key is not None and not manifest.signature:
        message = "manifest is not signed, but a signing key is configured"
        return _invalid(BackupReason.SIGNATURE_MISMATCH, message, manifest)
    if signing_key is not None and not manifest.signature_valid(signing_key):
        message = "manifest signature does not verify with the configured key: altered or foreign"
        return _invalid(BackupReason.SIGNATURE_MISMATCH, message, manifest)
    wrong = expect.mismatches(manifest) if expect is not None else []
    if wrong:
        assert expect is not None
        message = (
            f"manifest does not belong to StackBackup {expect.namespace}/{expect.name}: "
            + "; ".join(wrong)
            + " (files of another backup are not accepted in its place)"
        )
        return _invalid(BackupReason.IDENTITY_MISMATCH, message, manifest)
    if manifest.file(RDB_PATH) is None:
        return _invalid(BackupReason.MANIFEST_INVALID, f"manifest lists no {RDB_PATH}", manifest)
    files: dict[str, bytes] = {}
    for entry in manifest.files:
        try:
            data = store.get(f"{location}/{entry.path}")
        except NotFound:
            return _invalid(BackupReason.FILE_MISSING, f"{entry.path} is missing", manifest)
        if len(data) != entry.size:
            kind = "truncated" if len(data) < entry.size else "longer than recorded"
            message = f"{entry.path} is {kind}: {len(data)} bytes, manifest says {entry.size}"
            return _invalid(BackupReason.CHECKSUM_MISMATCH, message, manifest)
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            message = f"{entry.path}: sha256 {digest[:12]}... does not match the manifest's"
            return _invalid(BackupReason.CHECKSUM_MISMATCH, message, manifest)
        files[entry.path] = data
    rdb = files[RDB_PATH]
    try:
        header = parse_header(rdb)
    except RdbFormatError as exc:
        return _invalid(BackupReason.RDB_UNLOADABLE, f"{RDB_PATH}: {exc}", manifest)
    facts = manifest.redis
    if header.redis_version != facts.version or header.version != facts.rdb_version:
        message = (
            f"RDB written by Redis {header.redis_version} (format {header.version}), manifest "
            f"says {facts.version} (format {facts.rdb_version})"
        )
        return _invalid(BackupReason.MANIFEST_INVALID, message, manifest)
    declared = header.keys_by_db.get(facts.db, 0)
    if declared != facts.declared_keys:
        message = f"RDB declares {declared} keys, manifest says {facts.declared_keys}"
        return _invalid(BackupReason.MANIFEST_INVALID, message, manifest)
    load_image = facts.image if runtime.image_exists(facts.image) or not image else image
    try:
        counts = count_rdb(runtime, load_image, rdb, facts.db)
    except KongMaskerError as exc:
        return _invalid(
            BackupReason.RDB_UNLOADABLE, f"Redis cannot load it: {exc.message}", manifest
        )
    elapsed = (now() - _parse_time(manifest.completed_at)).total_seconds()
    problems = compare_counts(facts.prefixes, counts, max(elapsed, 0.0))
    if problems:
        return _invalid(BackupReason.KEY_COUNT_MISMATCH, "; ".join(problems[:3]), manifest)
    total = sum(p.keys for p in counts.values())
    message = f"{len(files)} files verified; {total} keys loaded by Redis {header.redis_version}"
    if manifest.signature:
        message += "; signature verified" if signing_key else "; signed, but no key to verify"
    return Verdict(True, BackupReason.VALIDATION_PASSED, message, manifest, counts, files=files)


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
