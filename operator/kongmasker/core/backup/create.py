"""Taking a backup: a consistent Redis snapshot, the rendered configs, the redacted spec, and
a manifest written last (a backup directory without manifest.json is incomplete).

    snapshot: TIME -> LASTSAVE -> BGSAVE -> LASTSAVE moved -> copy the RDB out of the
              container -> its AUX ctime must not predate our BGSAVE (else retry)
    count:    load the RDB into a throwaway Redis, keys per prefix and TTL class
    store:    files, then manifest.json with sizes and sha256 of every file
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kongmasker.adapters.runtime import Runtime
from kongmasker.adapters.storage import BackupStore
from kongmasker.api.backup import MANIFEST_NAME, BackupReason
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component
from kongmasker.core.backup.manifest import (
    KONG_CONFIG,
    NGINX_CONFIG,
    RDB_PATH,
    STACK_SPEC,
    FileEntry,
    Identity,
    KeyCounts,
    Manifest,
    RedisFacts,
)
from kongmasker.core.backup.rdb import RdbFormatError, RdbHeader, parse_header
from kongmasker.core.backup.rediscli import ContainerRedis, RedisCommandFailed, ScratchRedis
from kongmasker.core.render import (
    KONG_CONFIG_PATH,
    NGINX_CONFIG_PATH,
    StackRef,
    render_stack,
)
from kongmasker.errors import KongMaskerError, NotFound, PermanentError, TransientError

log = logging.getLogger(__name__)


class BackupFailed(TransientError):
    """A backup could not be taken; `reason` is a BackupReason."""

    reason = BackupReason.BACKUP_FAILED


class SecretInBackup(PermanentError):
    """A file to be stored contains a secret value: the backup is refused."""

    reason = BackupReason.SECRET_IN_BACKUP


@dataclass(frozen=True)
class StackTarget:
    """Where one stack's state lives on its Docker host."""

    ref: StackRef
    spec: StackSpec
    generation: int = 0

    @property
    def redis_container(self) -> str:
        return self.ref.container_name(Component.REDIS)

    @property
    def volume(self) -> str:
        return self.ref.redis_volume(self.spec)

    @property
    def identity(self) -> Identity:
        return Identity(self.ref.namespace, self.ref.name, self.ref.uid, self.generation)


@dataclass(frozen=True)
class Snapshot:
    rdb: bytes
    header: RdbHeader
    seconds: float


def take_snapshot(
    runtime: Runtime,
    container: str,
    *,
    timeout: float = 120.0,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """BGSAVE, wait for LASTSAVE to move, copy the RDB out of `container`.

    Consistency: the RDB is a fork-time image of the dataset. It is accepted only if its
    AUX ctime is not older than our BGSAVE, so an older dump.rdb is never mistaken for ours
    (a newer automatic save is just as consistent and is accepted).
    """
    started = time.monotonic()
    redis = ContainerRedis(runtime, container)
    config = _config_paths(redis)
    for attempt in range(1, attempts + 1):
        issued = bgsave(redis, timeout, sleep)
        data = runtime.read_file(container, config)
        if data is None:
            raise BackupFailed(f"{config} not found in {container} after BGSAVE")
        try:
            header = parse_header(data)
        except RdbFormatError as exc:
            log.warning("snapshot attempt %d: %s", attempt, exc)
            continue
        if header.created and header.created < int(issued):
            log.warning("snapshot attempt %d: RDB predates BGSAVE, retrying", attempt)
            continue
        return Snapshot(data, header, time.monotonic() - started)
    raise BackupFailed(f"no consistent RDB after {attempts} attempts")


def _config_paths(redis: ContainerRedis) -> str:
    directory = redis.call("CONFIG", "GET", "dir").splitlines()[-1]
    filename = redis.call("CONFIG", "GET", "dbfilename").splitlines()[-1]
    return f"{directory.rstrip('/')}/{filename}"


def bgsave(
    redis: ContainerRedis, timeout: float, sleep: Callable[[float], None] = time.sleep
) -> float:
    """Issue BGSAVE once LASTSAVE is in the past; wait for it; return the issue time."""
    deadline = time.monotonic() + timeout
    before = int(redis.call("LASTSAVE"))
    # LASTSAVE has one-second resolution: issue in a later second so that "moved" is exact.
    while redis.server_time() < before + 1:
        _check_deadline(deadline, "LASTSAVE to be in the past")
        sleep(0.05)
    while True:
        issued = redis.server_time()
        try:
            redis.call("BGSAVE")
            break
        except RedisCommandFailed as exc:
            if "progress" not in str(exc):  # another save is running: wait for it
                raise
            _check_deadline(deadline, "a running save to finish")
            sleep(0.1)
    while True:
        persistence = redis.info("persistence")
        done = persistence.get("rdb_bgsave_in_progress") == "0"
        if done and int(redis.call("LASTSAVE")) > before:
            if persistence.get("rdb_last_bgsave_status") != "ok":
                raise BackupFailed("Redis reports the BGSAVE failed (rdb_last_bgsave_status)")
            return issued
        _check_deadline(deadline, "BGSAVE to complete (LASTSAVE to move)")
        sleep(0.05)


def _check_deadline(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise BackupFailed(f"timed out waiting for {what}")


def count_rdb(runtime: Runtime, image: str, rdb: bytes, db: int = 0) -> KeyCounts:
    """Load `rdb` into a throwaway Redis of `image`; keys per prefix and TTL class."""
    with ScratchRedis(runtime, image, "count", files={"/data/dump.rdb": rdb}) as scratch:
        scratch_redis = scratch.redis
        scratch_redis.db = db
        return scratch_redis.count_keys()


_SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|API_?KEY|CREDENTIAL)", re.IGNORECASE)


def redact_spec(spec: Mapping[str, Any], secret_values: Sequence[str]) -> dict[str, Any]:
    """The spec without secrets: env values that look secret and any known secret value
    are replaced (the spec itself only names Secrets; users may still put one in env)."""

    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, Mapping):
            if "name" in value and "value" in value and _SECRET_ENV.search(str(value["name"])):
                return {**value, "value": "<redacted>"}
            return {k: clean(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and value in secret_values:
            return "<redacted>"
        return value

    return dict(clean(dict(spec)))


def assert_no_secrets(files: Mapping[str, bytes], secret_values: Sequence[str]) -> None:
    """Refuse to store a file that contains a secret value (checked on every text file)."""
    for path, data in files.items():
        if path == RDB_PATH:
            continue  # the dataset: masking mappings, never the operator's Secrets
        for secret in secret_values:
            if len(secret) >= 4 and secret.encode() in data:
                raise SecretInBackup(f"{path} contains a Secret value; backup refused")


def live_configs(runtime: Runtime, target: StackTarget) -> dict[str, bytes]:
    """Kong and Nginx configs as running; rendered from the spec if a container lacks one.

    Both hold `{vault://env/...}` references, never secret values.
    """
    desired = render_stack(target.ref, target.spec, {}, 20)
    out = {}
    for comp, path, key in (
        (Component.KONG, KONG_CONFIG_PATH, KONG_CONFIG),
        (Component.NGINX, NGINX_CONFIG_PATH, NGINX_CONFIG),
    ):
        data = None
        try:
            data = runtime.read_file(target.ref.container_name(comp), path)
        except NotFound:
            data = None
        out[key] = data if data is not None else (desired[comp].config or b"")
    return out


@dataclass
class BackupJob:
    """One backup of one stack into `store` under `location` (a key prefix)."""

    runtime: Runtime
    store: BackupStore
    target: StackTarget
    backup: Identity
    location: str
    spec_doc: Mapping[str, Any]
    secret_values: Sequence[str] = ()
    signing_key: bytes | None = None
    """Sign the manifest (HMAC-SHA256) with this key."""
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def run(self) -> Manifest:
        """Take, count and store the backup; returns the manifest that was written."""
        started_at = self.clock()
        started = time.monotonic()
        info = self.runtime.get_container(self.target.redis_container)
        if info is None or not info.running:
            raise BackupFailed(
                f"Redis container {self.target.redis_container} is not running",
                reason=BackupReason.STACK_NOT_RUNNING,
            )
        snap = take_snapshot(self.runtime, info.id)
        db = self.target.spec.redis.db
        try:
            counts = count_rdb(self.runtime, info.image, snap.rdb, db)
        except KongMaskerError as exc:
            raise BackupFailed(f"the snapshot does not load: {exc.message}") from exc
        files = {RDB_PATH: snap.rdb, **live_configs(self.runtime, self.target)}
        doc = redact_spec(self.spec_doc, self.secret_values)
        files[STACK_SPEC] = yaml.safe_dump(doc, sort_keys=True).encode()
        assert_no_secrets(files, self.secret_values)
        for path, data in files.items():
            self.store.put(f"{self.location}/{path}", data)
        manifest = Manifest(
            backup=self.backup,
            stack=self.target.identity,
            started_at=_iso(started_at),
            completed_at=_iso(self.clock()),
            duration_seconds=time.monotonic() - started,
            redis=RedisFacts(
                version=snap.header.redis_version,
                image=info.image,
                rdb_version=snap.header.version,
                db=db,
                declared_keys=snap.header.keys_by_db.get(db, 0),
                prefixes=counts,
            ),
            files=tuple(FileEntry.of(p, d) for p, d in sorted(files.items())),
        )
        if self.signing_key:
            manifest = manifest.sign(self.signing_key)
        self.store.put(f"{self.location}/{MANIFEST_NAME}", manifest.to_json())
        return manifest


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
