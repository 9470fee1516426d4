"""Restoring a backup into a stack, and putting the previous data back on any failure.

    validate (refused if invalid: nothing touched)
    -> stop Backend, Nginx, Kong (graceful, reverse dependency order)
    -> count the live keys (the "previous" counts), stop Redis (BGSAVE first)
    -> on the stack's volume: move AOF dir and dump.rdb aside, write the backup's RDB
    -> a throwaway Redis on the volume loads it, its counts must match the manifest, then
       rebuilds the AOF from it (CONFIG SET appendonly yes: Redis writes its own AOF layout,
       which the stack's Redis, running with appendonly yes, loads in preference to the RDB)
    -> start Redis, gate, count again against the manifest
    -> start Kong, Nginx, Backend in order, each health-gated
    -> remove the set-aside data

Any failure after the data was moved aside stops Redis, moves the previous files back,
starts everything that was running and checks the previous counts: the stack ends either
with the backup's data or with exactly its old data. Data set aside by a restore that could
not roll back is never deleted by a later one (that restore refuses instead).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kongmasker.adapters.probes import Probes
from kongmasker.adapters.runtime import ContainerInfo, Runtime
from kongmasker.adapters.storage import BackupStore
from kongmasker.api.backup import BackupReason
from kongmasker.api.vocabulary import START_ORDER, STOP_ORDER, Component
from kongmasker.config import Settings
from kongmasker.core import health as gates
from kongmasker.core.backup.create import StackTarget, bgsave
from kongmasker.core.backup.manifest import RDB_PATH, KeyCounts, compare_counts, total_keys
from kongmasker.core.backup.rediscli import ContainerRedis, ScratchRedis
from kongmasker.core.backup.validate import Expected, Verdict, validate_backup
from kongmasker.core.stack import stop_component
from kongmasker.errors import KongMaskerError, PermanentError, TransientError

log = logging.getLogger(__name__)

DATA_DIR = "/data"
PREVIOUS = f"{DATA_DIR}/.kongmasker-restore-previous"
DATA_FILES = ("appendonlydir", "dump.rdb", "appendonly.aof")


class RestoreRefused(PermanentError):
    """The backup did not validate (`verdict` says why) or the stack cannot be restored
    into; nothing changed."""

    reason = BackupReason.RESTORE_REFUSED

    def __init__(self, message: str, verdict: Verdict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


class RestoreFailed(TransientError):
    """The restore failed and the previous data was put back (`rolled_back`), or not."""

    reason = BackupReason.ROLLED_BACK

    def __init__(self, message: str, *, rolled_back: bool) -> None:
        super().__init__(
            message,
            reason=BackupReason.ROLLED_BACK if rolled_back else BackupReason.ROLLBACK_FAILED,
        )
        self.rolled_back = rolled_back


@dataclass
class RestoreResult:
    verdict: Verdict
    previous: KeyCounts
    restored: KeyCounts
    seconds: float
    steps: list[str] = field(default_factory=list)

    @property
    def keys(self) -> int:
        return total_keys(self.restored)


@dataclass
class RestoreJob:
    """Restore the backup under `location` into `target`'s Redis."""

    runtime: Runtime
    store: BackupStore
    location: str
    target: StackTarget
    probes: Probes
    secrets: Mapping[str, str]
    settings: Settings
    progress: Callable[[str], None] = lambda message: None
    signing_key: bytes | None = None
    expect: Expected | None = None
    """The source StackBackup the files must belong to (validate.py)."""
    steps: list[str] = field(default_factory=list)

    def run(self) -> RestoreResult:
        started = time.monotonic()
        self._note(f"validating {self.location}")
        verdict = validate_backup(
            self.runtime,
            self.store,
            self.location,
            image=self.target.spec.redis.image,
            signing_key=self.signing_key,
            expect=self.expect,
        )
        if not verdict.valid:
            raise RestoreRefused(
                f"backup is invalid ({verdict.reason}): {verdict.message}", verdict
            )
        containers = {
            c: self.runtime.get_container(self.target.ref.container_name(c)) for c in START_ORDER
        }
        redis = containers[Component.REDIS]
        if redis is None or not redis.running:
            raise RestoreRefused(f"Redis container {self.target.redis_container} is not running")
        if self._shell_output(f"[ -e {PREVIOUS} ] && echo present || true", redis.id):
            raise RestoreRefused(
                f"{PREVIOUS} exists on volume {self.target.volume}: data set aside by an earlier "
                "restore that could not roll back; inspect it and remove it first"
            )
        running = [c for c in START_ORDER[1:] if (i := containers[c]) is not None and i.running]
        previous: KeyCounts = {}
        counted_at = time.monotonic()
        moved = False
        try:
            self._stop_dependents(containers, running)
            previous = self._redis(redis).count_keys()
            counted_at = time.monotonic()
            self._note(f"{total_keys(previous)} keys before restore; stopping Redis")
            self._stop(Component.REDIS, redis)
            moved = True
            self._swap_in(verdict.files[RDB_PATH])
            self._rebuild_aof(verdict)
            restored = self._start_redis_and_verify(redis, verdict)
            self._start_dependents(containers, running)
        except Exception as exc:
            message = exc.message if isinstance(exc, KongMaskerError) else repr(exc)
            self._note(f"restore failed: {message}; putting the previous state back")
            self._roll_back(containers, running, moved, previous, counted_at, message)
            raise  # not reached: _roll_back always raises
        self.runtime.exec(redis.id, ["rm", "-rf", PREVIOUS])
        self._note(f"restored {total_keys(restored)} keys; previous data removed")
        return RestoreResult(verdict, previous, restored, time.monotonic() - started, self.steps)

    def recover_interrupted(self) -> str:
        """After an operator crash in the middle of a restore: if data was set aside on the
        volume, stop the stack, put that data back, start the stack again. Returns what was
        done. Whatever Redis served meanwhile (a reconcile may have started it on the
        half-restored volume) is discarded: the set-aside data is the stack's real state."""
        containers = {
            c: self.runtime.get_container(self.target.ref.container_name(c)) for c in START_ORDER
        }
        redis = containers[Component.REDIS]
        if redis is None:
            raise RestoreRefused(f"Redis container {self.target.redis_container} is missing")
        with self._scratch("/tmp") as shell:
            present = shell.shell(f"[ -e {PREVIOUS} ] && echo present || true").strip()
        if not present:
            return "no data was set aside on the volume: nothing to put back"
        existing = [c for c in START_ORDER[1:] if containers[c] is not None]
        for comp in STOP_ORDER:
            info = containers[comp]
            if info is not None and comp is not Component.REDIS and info.running:
                self._stop(comp, info)
        self.runtime.stop_container(redis.id, timeout=60)
        keep = " ".join(DATA_FILES)
        with self._scratch("/tmp") as shell:
            shell.shell(
                f"cd {DATA_DIR}; rm -rf {keep}; "
                f"for f in {keep}; do if [ -e {PREVIOUS}/$f ]; then mv {PREVIOUS}/$f .; fi; "
                f"done; rmdir {PREVIOUS}"
            )
        self.runtime.start_container(redis.id)
        self._gate(Component.REDIS)
        keys = total_keys(self._redis(redis).count_keys())
        self._note(f"set-aside data put back: Redis serves {keys} keys")
        try:
            self._start_dependents(containers, existing)
        except KongMaskerError as exc:
            return f"previous data put back ({keys} keys); restarting dependents: {exc.message}"
        return f"previous data put back ({keys} keys) and the stack restarted"

    # -- steps --------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        log.info("restore %s: %s", self.target.ref.name, message)
        self.steps.append(message)
        self.progress(message)

    def _redis(self, info: ContainerInfo) -> ContainerRedis:
        return ContainerRedis(self.runtime, info.id, db=self.target.spec.redis.db)

    def _stop(self, comp: Component, info: ContainerInfo) -> None:
        if comp is Component.REDIS:
            # Persisted through redis-cli in the container (as backups are), then stopped
            # with the stack's grace period: the AOF on the volume is complete.
            bgsave(self._redis(info), self.settings.stop.redis_save_timeout)
            grace = self.target.spec.stop_grace_period_seconds or self.settings.stop.grace_seconds
            self.runtime.stop_container(info.id, timeout=grace)
            self._note("redis: saved (BGSAVE, LASTSAVE moved) and stopped")
            return
        note = stop_component(
            comp,
            info.id,
            self.target.spec,
            self.runtime,
            self.probes,
            self.secrets,
            self.settings,
        )
        self._note(f"{comp}: {note}")

    def _stop_dependents(
        self, containers: Mapping[Component, ContainerInfo | None], running: list[Component]
    ) -> None:
        for comp in STOP_ORDER:
            info = containers[comp]
            if comp in running and info is not None:
                self._stop(comp, info)

    def _start_dependents(
        self, containers: Mapping[Component, ContainerInfo | None], running: list[Component]
    ) -> None:
        for comp in START_ORDER[1:]:
            info = containers[comp]
            if comp in running and info is not None:
                self.runtime.start_container(info.id)
                self._gate(comp)

    def _gate(self, comp: Component) -> None:
        health = gates.wait_healthy(
            comp,
            self.target.spec,
            self.probes,
            self.secrets,
            timeout=self.settings.health.gate_timeout,
            interval=self.settings.health.poll_interval,
        )
        if not health.ok:
            raise TransientError(f"{comp} did not pass its health gate: {health.message}")
        self._note(f"{comp} healthy: {health.message}")

    def _scratch(self, data_dir: str) -> ScratchRedis:
        return ScratchRedis(
            self.runtime,
            self.target.spec.redis.image,
            "restore",
            volume=self.target.volume,
            data_dir=data_dir,
        )

    def _shell_output(self, script: str, container: str) -> str:
        return self.runtime.exec(container, ["sh", "-c", script]).output.strip()

    def _swap_in(self, rdb: bytes) -> None:
        """Move the current data aside and write the backup's RDB, as Redis's own user."""
        keep = " ".join(DATA_FILES)
        with self._scratch("/tmp") as shell:  # dir /tmp: this Redis loads nothing
            shell.shell(
                f"mkdir {PREVIOUS}; cd {DATA_DIR}; "
                f"for f in {keep}; do if [ -e $f ]; then mv $f {PREVIOUS}/; fi; done"
            )
            self.runtime.put_file(shell.container_id, f"{DATA_DIR}/dump.rdb", rdb)
            shell.shell(f"chown redis:redis {DATA_DIR}/dump.rdb; chmod 600 {DATA_DIR}/dump.rdb")
        self._note(f"previous data moved to {PREVIOUS}; backup RDB ({len(rdb)} bytes) in place")

    def _rebuild_aof(self, verdict: Verdict) -> None:
        assert verdict.manifest is not None
        facts = verdict.manifest.redis
        with self._scratch(DATA_DIR) as loader:
            redis = loader.redis
            redis.db = facts.db
            counts = redis.count_keys()
            problems = compare_counts(facts.prefixes, counts, _elapsed(verdict))
            if problems:
                raise TransientError(f"loaded RDB differs from manifest: {'; '.join(problems)}")
            redis.call("CONFIG", "SET", "appendonly", "yes")
            loader.wait_for("the AOF rewrite", lambda: _aof_ready(redis.info("persistence")), 300)
            self.runtime.stop_container(loader.container_id, timeout=60)
        self._note(f"AOF rebuilt from the backup ({total_keys(counts)} keys)")

    def _start_redis_and_verify(self, redis: ContainerInfo, verdict: Verdict) -> KeyCounts:
        assert verdict.manifest is not None
        self.runtime.start_container(redis.id)
        self._gate(Component.REDIS)
        counts = self._redis(redis).count_keys()
        problems = compare_counts(verdict.manifest.redis.prefixes, counts, _elapsed(verdict))
        if problems:
            raise TransientError(
                f"Redis after restore differs from manifest: {'; '.join(problems)}"
            )
        self._note(f"Redis serves {total_keys(counts)} keys, as in the manifest")
        return counts

    def _roll_back(
        self,
        containers: Mapping[Component, ContainerInfo | None],
        running: list[Component],
        moved: bool,
        previous: KeyCounts,
        counted_at: float,
        cause: str,
    ) -> None:
        """Put the previous data back and restart what was running; always raises."""
        redis = containers[Component.REDIS]
        assert redis is not None
        try:
            if moved:
                self.runtime.stop_container(redis.id, timeout=60)
                keep = " ".join(DATA_FILES)
                with self._scratch("/tmp") as shell:
                    shell.shell(
                        f"cd {DATA_DIR}; rm -rf {keep}; "
                        f"for f in {keep}; do "
                        f"if [ -e {PREVIOUS}/$f ]; then mv {PREVIOUS}/$f .; fi; "
                        f"done; rmdir {PREVIOUS}"
                    )
            info = self.runtime.get_container(redis.id)
            if info is not None and not info.running:
                self.runtime.start_container(redis.id)
            self._gate(Component.REDIS)
            if previous:
                counts = self._redis(redis).count_keys()
                problems = compare_counts(previous, counts, time.monotonic() - counted_at + 1)
                if problems:
                    raise TransientError(f"previous data differs: {'; '.join(problems)}")
        except Exception as exc:
            message = exc.message if isinstance(exc, KongMaskerError) else repr(exc)
            raise RestoreFailed(
                f"restore failed ({cause}) and rolling back failed too ({message}); "
                f"previous data may still be in {PREVIOUS} on volume {self.target.volume}",
                rolled_back=False,
            ) from exc
        # The data is back: a dependent that will not become healthy now is reported, but
        # does not make the rollback a failure (it was stopped healthy or not).
        try:
            self._start_dependents(containers, running)
            restarted = "the stack restarted"
        except KongMaskerError as exc:
            restarted = f"restarting dependents: {exc.message}"
        raise RestoreFailed(
            f"restore failed ({cause}); previous data put back "
            f"({total_keys(previous)} keys); {restarted}",
            rolled_back=True,
        )


def _aof_ready(info: Mapping[str, str]) -> bool:
    return (
        info.get("aof_enabled") == "1"
        and info.get("aof_rewrite_in_progress") == "0"
        and info.get("aof_rewrite_scheduled") == "0"
        and int(info.get("aof_rewrites", "0")) >= 1
        and info.get("aof_last_bgrewrite_status") == "ok"
    )


def _elapsed(verdict: Verdict) -> float:
    assert verdict.manifest is not None
    done = dt.datetime.strptime(verdict.manifest.completed_at, "%Y-%m-%dT%H:%M:%SZ")
    return max(0.0, (dt.datetime.now(dt.UTC) - done.replace(tzinfo=dt.UTC)).total_seconds()) + 1
