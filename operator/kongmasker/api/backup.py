"""Typed model of the `StackBackup` resource: spec, status pieces and vocabulary. No I/O.

One resource type covers three requests, chosen by `spec.type` (Velero has Backup, Schedule
and Restore kinds; CloudNativePG has Backup and ScheduledBackup; one kind with a type keeps
`kubectl get stackbackups` a single list of everything that happened to a stack's data):

* ``Backup``   - take one backup of `spec.stackRef` now (children of a schedule are these).
* ``Schedule`` - create a ``Backup`` on `spec.schedule.cron`, apply retention to its children.
* ``Restore``  - put the data of backup `spec.restore.backupName` into `spec.stackRef`.

    >>> spec = BackupSpec.from_dict({"stackRef": {"name": "demo"}})
    >>> spec.type, spec.storage.kind
    ('Backup', 'directory')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from kongmasker.errors import InvalidSpec

BACKUP_KIND: Final = "StackBackup"
BACKUP_PLURAL: Final = "stackbackups"
BACKUP_SHORT_NAME: Final = "kmb"

LABEL_SCHEDULE: Final = "kongmasker.io/schedule"
"""On Backup objects created by a Schedule: the Schedule's name."""
LABEL_BACKUP_STACK: Final = "kongmasker.io/stack"
"""On every StackBackup the operator creates: the stack's name (for label selectors)."""

VALIDATE_ANNOTATION: Final = "backup.kongmasker.io/validate-requested-at"
"""On a Backup: set it to any new value (e.g. a timestamp) to validate the stored backup again.
Not under `kongmasker.io/`: kopf's progress storage uses that prefix and hides such
annotations from change detection."""

DEFAULT_DIRECTORY: Final = "/var/lib/kongmasker/backups"
MANIFEST_NAME: Final = "manifest.json"
FORMAT_VERSION: Final = 1


class BackupType(StrEnum):
    BACKUP = "Backup"
    SCHEDULE = "Schedule"
    RESTORE = "Restore"


class BackupPhase(StrEnum):
    """Velero-like phases. Backups: New -> InProgress -> Completed -> Validated | Invalid,
    or Failed. Schedules: Scheduled (or Failed for a bad cron). Restores: New -> InProgress
    -> Restored, or Failed (data rolled back) / Invalid (refused: the backup did not validate).
    """

    NEW = "New"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    VALIDATING = "Validating"
    VALIDATED = "Validated"
    INVALID = "Invalid"
    FAILED = "Failed"
    SCHEDULED = "Scheduled"
    RESTORED = "Restored"


TERMINAL_PHASES: Final = frozenset(
    {BackupPhase.VALIDATED, BackupPhase.INVALID, BackupPhase.FAILED, BackupPhase.RESTORED}
)


class BackupCondition(StrEnum):
    COMPLETED = "Completed"
    VALIDATED = "Validated"
    RESTORED = "Restored"
    DEGRADED = "Degraded"


class BackupReason(StrEnum):
    """CamelCase reasons of conditions and Events."""

    STARTED = "BackupStarted"
    SNAPSHOT_TAKEN = "SnapshotTaken"
    BACKUP_FAILED = "BackupFailed"
    VALIDATION_PASSED = "ValidationPassed"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    MANIFEST_INVALID = "ManifestInvalid"
    RDB_UNLOADABLE = "RdbUnloadable"
    KEY_COUNT_MISMATCH = "KeyCountMismatch"
    SIGNATURE_MISMATCH = "SignatureMismatch"
    IDENTITY_MISMATCH = "IdentityMismatch"
    DIRECTORY_NOT_ALLOWED = "DirectoryNotAllowed"
    """storage.directory.path is outside the operator's configured roots or has `..`."""
    SCHEDULE_TOO_FREQUENT = "ScheduleTooFrequent"
    """The cron fires more often than the operator's minimum schedule interval."""
    """The manifest names another backup, stack or time than the StackBackup validated."""
    FILE_MISSING = "FileMissing"
    STACK_NOT_FOUND = "StackNotFound"
    STACK_NOT_RUNNING = "StackNotRunning"
    SECRET_IN_BACKUP = "SecretInBackup"
    STORAGE_ERROR = "StorageError"
    RESTORE_STARTED = "RestoreStarted"
    RESTORE_REFUSED = "RestoreRefused"
    RESTORED = "Restored"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"
    SCHEDULED = "Scheduled"
    BACKUP_CREATED = "BackupCreated"
    RETENTION_DELETED = "RetentionDeleted"
    INVALID_SCHEDULE = "InvalidSchedule"
    AS_EXPECTED = "AsExpected"


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket; credentials come from a Secret of the namespace."""

    bucket: str
    endpoint: str = ""
    """Endpoint URL (e.g. http://127.0.0.1:9000); empty means AWS S3 of `region`."""
    region: str = "us-east-1"
    prefix: str = ""
    credentials_secret: str = ""
    """Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""


@dataclass(frozen=True)
class StorageSpec:
    """Where backups live: a directory (default) or an S3-compatible bucket."""

    directory: str = DEFAULT_DIRECTORY
    s3: S3Storage | None = None

    @property
    def kind(self) -> str:
        return "s3" if self.s3 is not None else "directory"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> StorageSpec:
        raw = raw or {}
        s3 = raw.get("s3")
        if s3:
            creds = s3.get("credentialsSecretRef") or {}
            return cls(
                s3=S3Storage(
                    bucket=str(s3["bucket"]),
                    endpoint=str(s3.get("endpoint") or ""),
                    region=str(s3.get("region") or "us-east-1"),
                    prefix=str(s3.get("prefix") or "").strip("/"),
                    credentials_secret=str(creds.get("name") or ""),
                )
            )
        directory = (raw.get("directory") or {}).get("path") or DEFAULT_DIRECTORY
        return cls(directory=str(directory))


@dataclass(frozen=True)
class SigningSpec:
    """A Secret key holding the HMAC key that signs (and must verify) backup manifests."""

    secret: str
    key: str = "signing-key"


@dataclass(frozen=True)
class RetentionSpec:
    """Which children of a schedule to keep. The newest Validated backup is always kept."""

    keep_last: int | None = None
    max_age_seconds: int | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    cron: str
    suspend: bool = False
    retention: RetentionSpec = field(default_factory=RetentionSpec)


@dataclass(frozen=True)
class RestoreSpec:
    backup_name: str
    """A StackBackup of type Backup in the same namespace (any stack's)."""


@dataclass(frozen=True)
class BackupSpec:
    """The whole spec of one StackBackup."""

    stack_name: str
    type: BackupType = BackupType.BACKUP
    storage: StorageSpec = field(default_factory=StorageSpec)
    validate: bool = True
    """Validate each backup after taking it (throwaway Redis load + key counts)."""
    schedule: ScheduleSpec | None = None
    restore: RestoreSpec | None = None
    signing: SigningSpec | None = None
    """Sign manifests with HMAC-SHA256; validation then rejects unsigned or altered ones."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BackupSpec:
        """Parse a spec dict (camelCase, as stored by the API server); repeats CEL's checks."""
        stack = (raw.get("stackRef") or {}).get("name")
        if not stack:
            raise InvalidSpec("spec.stackRef.name is required")
        try:
            kind = BackupType(raw.get("type") or BackupType.BACKUP)
        except ValueError as exc:
            raise InvalidSpec(
                f"spec.type {raw.get('type')!r} is not Backup/Schedule/Restore"
            ) from exc
        schedule = restore = None
        if kind is BackupType.SCHEDULE:
            sched = raw.get("schedule") or {}
            if not sched.get("cron"):
                raise InvalidSpec("spec.schedule.cron is required for type Schedule")
            ret = sched.get("retention") or {}
            schedule = ScheduleSpec(
                cron=str(sched["cron"]),
                suspend=bool(sched.get("suspend", False)),
                retention=RetentionSpec(
                    keep_last=_opt_int(ret.get("keepLast")),
                    max_age_seconds=parse_duration(ret["maxAge"]) if ret.get("maxAge") else None,
                ),
            )
        if kind is BackupType.RESTORE:
            name = (raw.get("restore") or {}).get("backupName")
            if not name:
                raise InvalidSpec("spec.restore.backupName is required for type Restore")
            restore = RestoreSpec(backup_name=str(name))
        sign = raw.get("signingSecretRef") or {}
        return cls(
            signing=SigningSpec(str(sign["name"]), str(sign.get("key") or "signing-key"))
            if sign.get("name")
            else None,
            stack_name=str(stack),
            type=kind,
            storage=StorageSpec.from_dict(raw.get("storage")),
            validate=bool(raw.get("validate", True)),
            schedule=schedule,
            restore=restore,
        )


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """ "30d", "12h", "1h30m" -> seconds (Go-like units plus d and w)."""
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidSpec(f"duration {text!r} is not like 30d, 12h or 1h30m")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def human_size(size: int) -> str:
    """Bytes as a short string for printer columns (1.5Mi)."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi"):
        if value < 1024 or unit == "Gi":
            return f"{value:.0f}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    return str(size)


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
