"""The StackBackup controller: one straight sequence of steps per request type.

    Backup:   parse -> stack + Secrets + runtime -> snapshot/store (Completed)
              -> validate (Validated | Invalid), or Failed with the reason
    Restore:  parse -> source backup finished? (else retry later) -> stack -> under the
              stack's lock: RestoreJob (Restored | Invalid: refused | Failed: rolled back)
    Schedule: parse cron -> due? create the child Backup -> retention -> Scheduled

Status is patched as each step finishes (a long backup shows InProgress, then Completed,
then Validated); Events are returned for the handler to post. Handlers stay thin.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import posixpath
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, closing
from dataclasses import dataclass, field
from typing import Any, Protocol

from kongmasker import metrics
from kongmasker.adapters.backup_kube import BackupApi
from kongmasker.adapters.hoststore import DockerHostDirectoryStore, engine_host
from kongmasker.adapters.kube import SecretReader
from kongmasker.adapters.probes import Probes
from kongmasker.adapters.runtime import Runtime
from kongmasker.adapters.storage import BackupStore, S3Store, StorageError
from kongmasker.api.backup import (
    BACKUP_KIND,
    LABEL_BACKUP_STACK,
    LABEL_SCHEDULE,
    TERMINAL_PHASES,
    BackupCondition,
    BackupPhase,
    BackupReason,
    BackupSpec,
    BackupType,
    StorageSpec,
    human_size,
)
from kongmasker.api.spec import DEFAULT_IMAGES, StackSpec
from kongmasker.api.vocabulary import GROUP, VERSION
from kongmasker.config import Settings
from kongmasker.core import preflight
from kongmasker.core.backup.create import BackupJob, StackTarget
from kongmasker.core.backup.manifest import Identity, total_keys
from kongmasker.core.backup.rediscli import labels as scratch_labels
from kongmasker.core.backup.restore import RestoreFailed, RestoreJob, RestoreRefused
from kongmasker.core.backup.retention import BackupRecord, newest_validated, select_for_deletion
from kongmasker.core.backup.schedule import check_interval, child_name, decide
from kongmasker.core.backup.validate import Expected, Verdict, validate_backup
from kongmasker.core.render import StackRef
from kongmasker.core.status import EventNote
from kongmasker.errors import InvalidSpec, KongMaskerError, NotFound, TransientError

log = logging.getLogger(__name__)


class StackReader(Protocol):
    def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class RuntimeFactory(Protocol):
    def __call__(self, url: str, tls_files: Mapping[str, bytes] | None) -> Runtime: ...


@dataclass(frozen=True)
class StoreHost:
    """The Docker host a directory store keeps its files on."""

    runtime: Runtime
    image: str
    """An image present on that host (the stack's Redis image) to run the store's helper."""
    engine_url: str = ""
    """The engine's URL (dockerHost.url), to name the host in status URLs."""


HostResolver = Callable[[], StoreHost]
StoreFactory = Callable[[StorageSpec, str, SecretReader, HostResolver], BackupStore]


def make_store(
    storage: StorageSpec,
    namespace: str,
    secrets: SecretReader,
    host: HostResolver | None = None,
) -> BackupStore:
    """The store a spec names. A directory is on the Docker host `host()` names (resolved
    only for directory storage); S3 credentials come from a Secret of `namespace`. Close
    the store after use (a directory store runs a helper container until then)."""
    if storage.s3 is None:
        if host is None:
            raise StorageError("directory storage needs the stack's Docker host")
        where = host()
        return DockerHostDirectoryStore(
            where.runtime,
            storage.directory,
            where.image,
            labels=scratch_labels("store"),
            engine=engine_host(where.engine_url),
        )
    s3 = storage.s3
    try:
        data = secrets.read_secret(namespace, s3.credentials_secret)
    except NotFound as exc:
        raise InvalidSpec(
            f"S3 credentials Secret {namespace}/{s3.credentials_secret} missing"
        ) from exc
    try:
        access, secret = data["AWS_ACCESS_KEY_ID"].decode(), data["AWS_SECRET_ACCESS_KEY"].decode()
    except KeyError as exc:
        raise InvalidSpec(
            f"Secret {namespace}/{s3.credentials_secret} needs AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        ) from exc
    except UnicodeDecodeError:
        # `from None`: the decode error quotes the credential's bytes.
        raise InvalidSpec(
            f"Secret {namespace}/{s3.credentials_secret}: AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY must be UTF-8 text"
        ) from None
    return S3Store(
        s3.bucket, access, secret, endpoint=s3.endpoint, region=s3.region, prefix=s3.prefix
    )


def signing_key(spec: BackupSpec, namespace: str, secrets: SecretReader) -> bytes | None:
    """The manifest signing key a spec names (None: unsigned backups)."""
    if spec.signing is None:
        return None
    ref = spec.signing
    try:
        data = secrets.read_secret(namespace, ref.secret)
    except NotFound as exc:
        raise InvalidSpec(f"signing Secret {namespace}/{ref.secret} missing") from exc
    if not data.get(ref.key):
        raise InvalidSpec(f"signing Secret {namespace}/{ref.secret} has no key {ref.key!r}")
    return data[ref.key]


@dataclass
class BackupDeps:
    """What the controller needs, built once by the handlers from the operator's Deps."""

    runtime_for: RuntimeFactory
    secrets: SecretReader
    stacks: StackReader
    api: BackupApi
    probes: Probes
    settings: Settings
    store_for: StoreFactory = make_store
    stack_lock: Callable[[str], AbstractContextManager[Any]] = lambda uid: contextlib.nullcontext()
    """The lock the stack's reconcile holds (by stack UID): a restore must not race it."""

    def open_store(self, storage: StorageSpec, namespace: str, host: HostResolver) -> BackupStore:
        """The store `storage` names, once it is within the administrator's limits: every
        store the controller uses is opened here."""
        if storage.s3 is None:
            allowed_directory(storage.directory, self.settings.backup.directory_roots)
        return self.store_for(storage, namespace, self.secrets, host)


def allowed_directory(path: str, roots: Sequence[str]) -> str:
    """`path` normalised if it lies within one of `roots`; else InvalidSpec naming the field.

    >>> allowed_directory("/var/lib/kongmasker/backups/team-a", ["/var/lib/kongmasker/backups"])
    '/var/lib/kongmasker/backups/team-a'
    """
    field = "spec.storage.directory.path"
    allowed = ", ".join(roots) or "(none: the operator allows no directory storage)"
    if ".." in path.split("/"):
        raise InvalidSpec(
            f"{field} {path!r} contains '..'; give a plain absolute path below one of: {allowed}",
            reason=BackupReason.DIRECTORY_NOT_ALLOWED,
        )
    norm = posixpath.normpath(path)
    for root in roots:
        base = posixpath.normpath(root)
        if path.startswith("/") and base != "/" and posixpath.commonpath([norm, base]) == base:
            return norm
    raise InvalidSpec(
        f"{field} {path!r} is outside the backup roots the operator allows ({allowed}); "
        "choose a path below one of them, or ask the administrator to add a root "
        "(KONGMASKER_BACKUP_DIRECTORY_ROOTS)",
        reason=BackupReason.DIRECTORY_NOT_ALLOWED,
    )


@dataclass(frozen=True)
class BackupObject:
    namespace: str
    name: str
    uid: str
    generation: int
    created: dt.datetime
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> BackupObject:
        meta = body["metadata"]
        return cls(
            namespace=str(meta["namespace"]),
            name=str(meta["name"]),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation", 0) or 0),
            created=parse_time(str(meta.get("creationTimestamp") or now_iso())),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
        )


def now_iso(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def expected_of(obj: BackupObject, stack: str, status: Mapping[str, Any]) -> Expected:
    """What a manifest stored for `obj` must say about itself (core/backup/validate.py)."""
    return Expected(
        namespace=obj.namespace,
        name=obj.name,
        uid=obj.uid,
        stack=stack,
        stack_uid=str(status.get("stackUID") or ""),
        created=obj.created,
    )


def backup_location(namespace: str, stack: str, backup: str) -> str:
    """Key prefix of one backup in its store."""
    return f"{namespace}/{stack}/{backup}"


@dataclass
class StatusBook:
    """The object's status as it evolves; every `set` is one immediate status patch."""

    obj: BackupObject
    api: BackupApi
    status: dict[str, Any] = field(default_factory=dict)
    events: list[EventNote] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = dict(self.obj.status)

    def set(
        self, conditions: Mapping[str, tuple[bool, str, str]] | None = None, **fields: Any
    ) -> None:
        """Merge `fields`; `conditions` maps type -> (ok, reason, message)."""
        self.status.update({k: v for k, v in fields.items() if v is not None})
        self.status["observedGeneration"] = self.obj.generation
        for ctype, (ok, reason, message) in (conditions or {}).items():
            self._condition(ctype, ok, reason, message)
        self.api.patch_backup_status(self.obj.namespace, self.obj.name, self.status)

    def _condition(self, ctype: str, ok: bool, reason: str, message: str) -> None:
        existing = [dict(c) for c in self.status.get("conditions") or []]
        status = "True" if ok else "False"
        old = next((c for c in existing if c.get("type") == ctype), None)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
        new = {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message[:1000],
            "lastTransitionTime": since,
            "observedGeneration": self.obj.generation,
        }
        self.status["conditions"] = [c for c in existing if c.get("type") != ctype] + [new]

    def note(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(EventNote(reason, message, warning))

    def fail(self, operation: str, stack: str, exc: KongMaskerError, phase: BackupPhase) -> None:
        reason = str(exc.reason)
        ctype = {
            "backup": BackupCondition.COMPLETED,
            "validate": BackupCondition.VALIDATED,
            "restore": BackupCondition.RESTORED,
        }[operation]
        self.set(
            phase=phase,
            failureReason=exc.message,
            completionTime=now_iso(),
            conditions={
                ctype: (False, reason, exc.message),
                BackupCondition.DEGRADED: (True, reason, exc.message),
            },
        )
        self.note(reason, exc.message, warning=True)
        metrics.BACKUP_FAILURES.labels(self.obj.namespace, stack, operation, reason).inc()


@dataclass(frozen=True)
class StackContext:
    target: StackTarget
    runtime: Runtime
    secrets: dict[str, str]
    spec_doc: Mapping[str, Any]
    engine_url: str = ""

    def store_host(self) -> StoreHost:
        return StoreHost(self.runtime, self.target.spec.redis.image, self.engine_url)


def stack_context(namespace: str, name: str, deps: BackupDeps) -> StackContext:
    """The stack object, its runtime and resolved Secrets; raises a KongMaskerError."""
    body = deps.stacks.get_stack(namespace, name)
    if body is None:
        raise InvalidSpec(
            f"KongMaskerStack {namespace}/{name} not found", reason=BackupReason.STACK_NOT_FOUND
        )
    meta = body["metadata"]
    spec = StackSpec.from_dict(body.get("spec") or {})
    ref = StackRef(namespace, name, str(meta["uid"]))
    tls = None
    if spec.docker_host.tls is not None:
        tls = deps.secrets.read_secret(namespace, spec.docker_host.tls.name)
    url = spec.docker_host.url or deps.settings.docker.default_url
    runtime = deps.runtime_for(url, tls)
    secrets = preflight.resolve_secrets(spec, namespace, deps.secrets)
    target = StackTarget(ref, spec, int(meta.get("generation", 0) or 0))
    return StackContext(target, runtime, secrets, body.get("spec") or {}, url)


def store_host(namespace: str, stacks: Sequence[str], deps: BackupDeps) -> StoreHost:
    """Where a backup's directory is: on the Docker host of the first of `stacks` that
    still exists (the backup's own stack first), else on the operator's default engine."""
    for name in stacks:
        body = deps.stacks.get_stack(namespace, name)
        if body is None:
            continue
        spec = StackSpec.from_dict(body.get("spec") or {})
        tls = None
        if spec.docker_host.tls is not None:
            tls = deps.secrets.read_secret(namespace, spec.docker_host.tls.name)
        url = spec.docker_host.url or deps.settings.docker.default_url
        return StoreHost(deps.runtime_for(url, tls), spec.redis.image, url)
    url = deps.settings.docker.default_url
    return StoreHost(deps.runtime_for(url, None), DEFAULT_IMAGES["redis"], url)


# -- Backup ----------------------------------------------------------------------------------


def run_backup(obj: BackupObject, deps: BackupDeps) -> list[EventNote]:
    """Take (and validate) one backup; returns the Events to post."""
    book = StatusBook(obj, deps.api)
    if obj.status.get("phase") in TERMINAL_PHASES:
        return []
    spec = BackupSpec.from_dict(obj.spec)
    stack = spec.stack_name
    book.set(phase=BackupPhase.IN_PROGRESS, startTime=now_iso(), failureReason="")
    book.note(BackupReason.STARTED, f"backing up stack {stack}")
    metrics.BACKUP_ATTEMPTS.labels(obj.namespace, stack, "backup").inc()
    with ExitStack() as cleanup:
        return _backup(obj, spec, book, deps, cleanup)


def _backup(
    obj: BackupObject, spec: BackupSpec, book: StatusBook, deps: BackupDeps, cleanup: ExitStack
) -> list[EventNote]:
    stack = spec.stack_name
    started = time.monotonic()
    try:
        ctx = stack_context(obj.namespace, stack, deps)
        store = cleanup.enter_context(
            closing(deps.open_store(spec.storage, obj.namespace, ctx.store_host))
        )
        key = signing_key(spec, obj.namespace, deps.secrets)
        where = backup_location(obj.namespace, stack, obj.name)
        manifest = BackupJob(
            ctx.runtime,
            store,
            ctx.target,
            Identity(obj.namespace, obj.name, obj.uid),
            where,
            ctx.spec_doc,
            list(ctx.secrets.values()),
            signing_key=key,
        ).run()
    except KongMaskerError as exc:
        book.fail("backup", stack, exc, BackupPhase.FAILED)
        return book.events
    seconds = time.monotonic() - started
    _observe_success(obj.namespace, stack, "backup", seconds)
    metrics.BACKUP_SIZE.labels(obj.namespace, stack).set(manifest.size)
    summary = f"{manifest.redis.keys} keys, {human_size(manifest.size)} in {seconds:.1f}s"
    book.set(
        phase=BackupPhase.COMPLETED,
        location=store.url(where),
        completionTime=now_iso(),
        durationSeconds=round(seconds, 3),
        sizeBytes=manifest.size,
        size=human_size(manifest.size),
        keys=manifest.redis.keys,
        keysByPrefix={p: s.keys for p, s in manifest.redis.prefixes.items()},
        redisVersion=manifest.redis.version,
        stackUID=ctx.target.ref.uid,
        conditions={BackupCondition.COMPLETED: (True, BackupReason.SNAPSHOT_TAKEN, summary)},
    )
    book.note(BackupReason.SNAPSHOT_TAKEN, summary)
    if spec.validate:
        image = ctx.target.spec.redis.image
        validate_into(book, ctx.runtime, store, where, stack, image, signing_key=key)
    return book.events


def revalidate(obj: BackupObject, deps: BackupDeps, requested: str) -> list[EventNote]:
    """Validate a finished backup again on request (annotation value `requested`)."""
    book = StatusBook(obj, deps.api)
    validation = obj.status.get("validation") or {}
    finished = (BackupPhase.VALIDATED, BackupPhase.INVALID, BackupPhase.COMPLETED)
    if obj.status.get("phase") not in finished or validation.get("requestedAt") == requested:
        return []
    spec = BackupSpec.from_dict(obj.spec)
    try:
        ctx = stack_context(obj.namespace, spec.stack_name, deps)
        host = ctx.store_host()
    except KongMaskerError:
        # The stack may be gone (or a Secret of it missing): its backups can still be
        # checked, on its Docker host if the stack is there, else on the default engine.
        try:
            host = store_host(obj.namespace, (spec.stack_name,), deps)
        except KongMaskerError:
            host = store_host(obj.namespace, (), deps)
    where = backup_location(obj.namespace, spec.stack_name, obj.name)
    try:
        key = signing_key(spec, obj.namespace, deps.secrets)
        store = deps.open_store(spec.storage, obj.namespace, lambda: host)
    except KongMaskerError as exc:
        book.fail("validate", spec.stack_name, exc, BackupPhase.INVALID)
        return book.events
    with closing(store):
        validate_into(
            book,
            host.runtime,
            store,
            where,
            spec.stack_name,
            host.image,
            requested=requested,
            signing_key=key,
        )
    return book.events


def validate_into(
    book: StatusBook,
    runtime: Runtime,
    store: BackupStore,
    where: str,
    stack: str,
    image: str,
    requested: str = "",
    signing_key: bytes | None = None,
) -> bool:
    """Validate and record the verdict (phase Validated or Invalid, condition, metrics)."""
    ns = book.obj.namespace
    book.set(phase=BackupPhase.VALIDATING)
    metrics.BACKUP_ATTEMPTS.labels(ns, stack, "validate").inc()
    expect = expected_of(book.obj, stack, book.status)
    verdict = validate_backup(
        runtime, store, where, image=image, signing_key=signing_key, expect=expect
    )
    record = {
        "requestedAt": requested or None,
        "time": now_iso(),
        "valid": verdict.valid,
        "reason": str(verdict.reason),
        "message": verdict.message,
        "durationSeconds": round(verdict.seconds, 3),
    }
    record = {k: v for k, v in record.items() if v is not None}
    ok = (verdict.valid, str(verdict.reason), verdict.message)
    if verdict.valid:
        _observe_success(ns, stack, "validate", verdict.seconds)
        book.set(
            phase=BackupPhase.VALIDATED,
            validation=record,
            failureReason="",
            conditions={
                BackupCondition.VALIDATED: ok,
                BackupCondition.DEGRADED: (False, BackupReason.AS_EXPECTED, "valid"),
            },
        )
        book.note(BackupReason.VALIDATION_PASSED, verdict.message)
        return True
    metrics.BACKUP_FAILURES.labels(ns, stack, "validate", str(verdict.reason)).inc()
    book.set(
        phase=BackupPhase.INVALID,
        validation=record,
        failureReason=verdict.message,
        conditions={
            BackupCondition.VALIDATED: ok,
            BackupCondition.DEGRADED: (True, str(verdict.reason), verdict.message),
        },
    )
    book.note(str(verdict.reason), verdict.message, warning=True)
    return False


def _observe_success(namespace: str, stack: str, operation: str, seconds: float) -> None:
    metrics.BACKUP_SUCCESSES.labels(namespace, stack, operation).inc()
    metrics.BACKUP_DURATION.labels(namespace, stack, operation).observe(seconds)
    metrics.BACKUP_LAST_SUCCESS.labels(namespace, stack, operation).set(time.time())


# -- Restore ---------------------------------------------------------------------------------


class SourceNotReady(TransientError):
    """The backup to restore from is still being taken or validated."""

    reason = "WaitingForBackup"
    delay = 5.0


def run_restore(obj: BackupObject, deps: BackupDeps) -> list[EventNote]:
    """Restore the named backup into the stack; raises SourceNotReady to be retried."""
    book = StatusBook(obj, deps.api)
    if obj.status.get("phase") in TERMINAL_PHASES:
        return []
    spec = BackupSpec.from_dict(obj.spec)
    assert spec.restore is not None
    stack, source_name = spec.stack_name, spec.restore.backup_name
    if obj.status.get("phase") == BackupPhase.IN_PROGRESS:
        return recover_interrupted_restore(book, spec, deps)
    source = deps.api.get_backup(obj.namespace, source_name)
    refused = _source_problem(source, source_name)
    if refused is not None:
        book.fail("restore", stack, RestoreRefused(refused), BackupPhase.FAILED)
        return book.events
    assert source is not None
    phase = (source.get("status") or {}).get("phase")
    if phase == BackupPhase.INVALID:
        found = source["status"].get("validation") or {}
        message = (
            f"backup {source_name} is Invalid ({found.get('reason', 'unknown')}): "
            f"{source['status'].get('failureReason', '')}"
        )
        book.fail("restore", stack, RestoreRefused(message), BackupPhase.INVALID)
        return book.events
    if phase not in (BackupPhase.COMPLETED, BackupPhase.VALIDATED):
        book.set(phase=BackupPhase.NEW, failureReason=f"waiting for backup {source_name} ({phase})")
        raise SourceNotReady(f"backup {source_name} is {phase or 'not started'}")
    source_spec = BackupSpec.from_dict(source.get("spec") or {})
    book.set(phase=BackupPhase.IN_PROGRESS, startTime=now_iso(), failureReason="")
    book.note(BackupReason.RESTORE_STARTED, f"restoring backup {source_name} into stack {stack}")
    metrics.BACKUP_ATTEMPTS.labels(obj.namespace, stack, "restore").inc()
    with ExitStack() as cleanup:
        return _restore(obj, spec, source, source_spec, book, deps, cleanup)


def _restore(
    obj: BackupObject,
    spec: BackupSpec,
    source: Mapping[str, Any],
    source_spec: BackupSpec,
    book: StatusBook,
    deps: BackupDeps,
    cleanup: ExitStack,
) -> list[EventNote]:
    assert spec.restore is not None
    stack, source_name = spec.stack_name, spec.restore.backup_name
    try:
        ctx = stack_context(obj.namespace, stack, deps)

        def host() -> StoreHost:
            # The backup's files are on its own stack's Docker host (this stack's if that
            # one was deleted).
            if source_spec.stack_name == stack:
                return ctx.store_host()
            return store_host(obj.namespace, (source_spec.stack_name, stack), deps)

        store = cleanup.enter_context(
            closing(deps.open_store(source_spec.storage, obj.namespace, host))
        )
        where = backup_location(obj.namespace, source_spec.stack_name, source_name)
        key = signing_key(source_spec, obj.namespace, deps.secrets)
        job = RestoreJob(
            ctx.runtime,
            store,
            where,
            ctx.target,
            deps.probes,
            ctx.secrets,
            deps.settings,
            signing_key=key,
            expect=expected_of(
                BackupObject.from_body(source), source_spec.stack_name, source.get("status") or {}
            ),
        )
        with deps.stack_lock(ctx.target.ref.uid):
            result = job.run()
    except RestoreRefused as exc:
        if exc.verdict is not None:
            mark_invalid(deps.api, obj.namespace, source_name, source, exc.verdict)
        phase = BackupPhase.INVALID if exc.verdict is not None else BackupPhase.FAILED
        book.fail("restore", stack, exc, phase)
        return book.events
    except RestoreFailed as exc:
        book.status["restore"] = {"steps": job.steps[-20:]}
        book.fail("restore", stack, exc, BackupPhase.FAILED)
        return book.events
    except KongMaskerError as exc:
        book.fail("restore", stack, exc, BackupPhase.FAILED)
        return book.events
    _observe_success(obj.namespace, stack, "restore", result.seconds)
    message = (
        f"restored {result.keys} keys from {source_name} in {result.seconds:.1f}s "
        f"(stack had {total_keys(result.previous)})"
    )
    book.set(
        phase=BackupPhase.RESTORED,
        location=store.url(where),
        completionTime=now_iso(),
        durationSeconds=round(result.seconds, 3),
        keys=result.keys,
        keysByPrefix={p: s.keys for p, s in result.restored.items()},
        restore={
            "previousKeys": total_keys(result.previous),
            "restoredKeys": result.keys,
            "steps": result.steps[-20:],
        },
        conditions={
            BackupCondition.RESTORED: (True, BackupReason.RESTORED, message),
            BackupCondition.DEGRADED: (False, BackupReason.AS_EXPECTED, "restored"),
        },
    )
    book.note(BackupReason.RESTORED, message)
    return book.events


def recover_interrupted_restore(
    book: StatusBook, spec: BackupSpec, deps: BackupDeps
) -> list[EventNote]:
    """A Restore found InProgress on (re)start was cut off by an operator restart: put the
    stack's set-aside data back instead of starting over, and report the restore Failed."""
    stack = spec.stack_name
    try:
        ctx = stack_context(book.obj.namespace, stack, deps)
        job = RestoreJob(
            ctx.runtime, _NoStore(), "", ctx.target, deps.probes, ctx.secrets, deps.settings
        )
        with deps.stack_lock(ctx.target.ref.uid):
            done = job.recover_interrupted()
    except KongMaskerError as exc:
        message = f"interrupted by an operator restart; recovery failed: {exc.message}"
        book.fail("restore", stack, RestoreFailed(message, rolled_back=False), BackupPhase.FAILED)
        return book.events
    message = f"interrupted by an operator restart; {done}"
    book.fail("restore", stack, RestoreFailed(message, rolled_back=True), BackupPhase.FAILED)
    return book.events


class _NoStore:
    """Recovery reads nothing from the backup store."""

    def put(self, key: str, data: bytes) -> None:
        raise AssertionError("recovery does not write backups")

    def get(self, key: str) -> bytes:
        raise AssertionError("recovery does not read backups")

    def list(self, prefix: str) -> list[str]:
        return []

    def delete(self, key: str) -> None:
        return None

    def url(self, key: str) -> str:
        return ""

    def close(self) -> None:
        return None


def mark_invalid(
    api: BackupApi, namespace: str, name: str, body: Mapping[str, Any], verdict: Verdict
) -> None:
    """Record on a backup that a validation (here: a restore's) found it invalid."""
    book = StatusBook(BackupObject.from_body(body), api)
    record = {
        "time": now_iso(),
        "valid": False,
        "reason": str(verdict.reason),
        "message": verdict.message,
        "durationSeconds": round(verdict.seconds, 3),
    }
    failed = (False, str(verdict.reason), verdict.message)
    book.set(
        phase=BackupPhase.INVALID,
        validation=record,
        failureReason=verdict.message,
        conditions={
            BackupCondition.VALIDATED: failed,
            BackupCondition.DEGRADED: (True, str(verdict.reason), verdict.message),
        },
    )


def _source_problem(source: Mapping[str, Any] | None, name: str) -> str | None:
    if source is None:
        return f"StackBackup {name} does not exist"
    if (source.get("spec") or {}).get("type", BackupType.BACKUP) != BackupType.BACKUP:
        return f"StackBackup {name} is not of type Backup"
    return None


# -- Schedule --------------------------------------------------------------------------------


def tick_schedule(obj: BackupObject, deps: BackupDeps, now: dt.datetime) -> list[EventNote]:
    """Create the backup that is due (if any), apply retention, report the schedule."""
    book = StatusBook(obj, deps.api)
    try:
        spec = BackupSpec.from_dict(obj.spec)
        assert spec.schedule is not None
        last_raw = obj.status.get("lastScheduleTime")
        decision = decide(
            spec.schedule.cron, parse_time(last_raw) if last_raw else None, obj.created, now
        )
        check_interval(spec.schedule.cron, deps.settings.backup.min_schedule_interval)
    except InvalidSpec as exc:
        if obj.status.get("failureReason") != exc.message:
            if exc.reason == InvalidSpec.reason:
                exc.reason = BackupReason.INVALID_SCHEDULE
            stack = str((obj.spec.get("stackRef") or {}).get("name", ""))
            book.fail("backup", stack, exc, BackupPhase.FAILED)
        return book.events
    stack = spec.stack_name
    changes: dict[str, Any] = {}
    if decision.due is not None and not spec.schedule.suspend:
        child = child_body(obj, spec, decision.due)
        if deps.api.create_backup(obj.namespace, child):
            book.note(BackupReason.BACKUP_CREATED, f"created backup {child['metadata']['name']}")
        changes["lastScheduleTime"] = now_iso(decision.due)
    children = deps.api.list_backups(obj.namespace, f"{LABEL_SCHEDULE}={obj.name}")
    records = _records(children, now)
    doomed = select_for_deletion(records, spec.schedule.retention, now)
    _delete_children(obj.namespace, doomed, children, deps, book)
    kept = [r for r in records if r.name not in doomed]
    newest = newest_validated(kept)
    message = f"next backup at {now_iso(decision.next)}"
    if spec.schedule.suspend:
        message = "suspended; " + message
    changes.update(
        phase=BackupPhase.SCHEDULED,
        nextScheduleTime=now_iso(decision.next),
        backups=[r.name for r in sorted(kept, key=lambda r: (r.created, r.name), reverse=True)],
        lastSuccessfulBackup=newest.name if newest else "",
        failureReason="",
    )
    unchanged = all(obj.status.get(k) == v for k, v in changes.items())
    current = obj.status.get("observedGeneration") == obj.generation
    if not unchanged or not current or not obj.status.get("conditions"):
        book.set(
            conditions={BackupCondition.DEGRADED: (False, BackupReason.SCHEDULED, message)},
            **changes,
        )
    return book.events


def _records(children: Sequence[Mapping[str, Any]], now: dt.datetime) -> list[BackupRecord]:
    return [
        BackupRecord(
            str(c["metadata"]["name"]),
            parse_time(str(c["metadata"].get("creationTimestamp") or now_iso(now))),
            str((c.get("status") or {}).get("phase") or BackupPhase.NEW),
        )
        for c in children
    ]


def _delete_children(
    namespace: str,
    doomed: Sequence[str],
    children: Sequence[Mapping[str, Any]],
    deps: BackupDeps,
    book: StatusBook,
    *,
    keep_on_error: bool = False,
) -> list[str]:
    """Delete the `doomed` children of a schedule, their files first. With `keep_on_error`,
    a child whose files cannot be deleted is kept (and named in the result) instead of
    failing the whole pass: its object keeps pointing at what is left."""
    by_name = {str(c["metadata"]["name"]): c for c in children}
    left: list[str] = []
    with ExitStack() as cleanup:
        # One store (so one helper container) per stack and storage, for every deletion.
        stores: dict[tuple[str, StorageSpec], BackupStore] = {}
        for name in doomed:
            # Each child's files are where that child put them (the schedule may have moved).
            child_spec = BackupSpec.from_dict(by_name[name].get("spec") or {})
            at = (child_spec.stack_name, child_spec.storage)
            try:
                if at not in stores:
                    host = _resolver(namespace, child_spec.stack_name, deps)
                    store = deps.open_store(child_spec.storage, namespace, host)
                    stores[at] = cleanup.enter_context(closing(store))
                where = backup_location(namespace, child_spec.stack_name, name)
                delete_stored(stores[at], where)
            except KongMaskerError as exc:
                if not keep_on_error:
                    raise
                left.append(name)
                book.note(
                    BackupReason.RETENTION_DELETED,
                    f"kept backup {name}: its files could not be deleted ({exc.message})",
                    warning=True,
                )
                continue
            deps.api.delete_backup(namespace, name)
            book.note(BackupReason.RETENTION_DELETED, f"deleted backup {name} and its files")
    return left


def schedule_deleted(obj: BackupObject, deps: BackupDeps, now: dt.datetime) -> list[EventNote]:
    """A Schedule is being deleted (its finalizer holds it): its retention is applied one
    last time. What retention would delete goes now, files included; what it keeps (its
    newest validated backup among them) is detached from the schedule and stays as ordinary
    Backups, so no file is left that no object names. Children are not left to garbage
    collection, which would delete their objects and leave their files on the host."""
    book = StatusBook(obj, deps.api)
    try:
        spec = BackupSpec.from_dict(obj.spec)
    except InvalidSpec:
        return []
    if spec.schedule is None:
        return []
    children = deps.api.list_backups(obj.namespace, f"{LABEL_SCHEDULE}={obj.name}")
    records = _records(children, now)
    doomed = select_for_deletion(records, spec.schedule.retention, now)
    # The schedule's deletion must not hang on a store that fails: what cannot be deleted is
    # kept (detached, with a Warning Event) rather than retried for ever.
    left = _delete_children(obj.namespace, doomed, children, deps, book, keep_on_error=True)
    kept = [r.name for r in records if r.name not in doomed or r.name in left]
    for name in kept:
        deps.api.detach_backup(obj.namespace, name, LABEL_SCHEDULE)
    if kept:
        book.note(
            BackupReason.RETENTION_DELETED,
            f"schedule deleted: kept {', '.join(kept)} as standalone backups",
        )
    return book.events


def _resolver(namespace: str, stack: str, deps: BackupDeps) -> HostResolver:
    return lambda: store_host(namespace, (stack,), deps)


def child_body(obj: BackupObject, spec: BackupSpec, when: dt.datetime) -> dict[str, Any]:
    """The Backup a schedule creates at `when`: same stack, storage and validation."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": BACKUP_KIND,
        "metadata": {
            "name": child_name(obj.name, when),
            "namespace": obj.namespace,
            "labels": {LABEL_SCHEDULE: obj.name, LABEL_BACKUP_STACK: spec.stack_name},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": BACKUP_KIND,
                    "name": obj.name,
                    "uid": obj.uid,
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "stackRef": {"name": spec.stack_name},
            "type": str(BackupType.BACKUP),
            "validate": spec.validate,
            "storage": dict(obj.spec.get("storage") or {}),
            **(
                {"signingSecretRef": dict(obj.spec["signingSecretRef"])}
                if obj.spec.get("signingSecretRef")
                else {}
            ),
        },
    }


def delete_stored(store: BackupStore, where: str) -> None:
    """Delete every file of one backup, the manifest first (it marks a backup complete)."""
    keys = store.list(where)
    manifest = [k for k in keys if k.endswith("/manifest.json")]
    for key in manifest + [k for k in keys if k not in manifest]:
        store.delete(key)
