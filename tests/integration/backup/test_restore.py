"""Restores into real Redis containers of a stack (AOF on, password, named volume): every key,
value and TTL class back, into the same stack after changes and into a new stack; invalid
backups refused with the stack untouched; failures after the data was swapped roll back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tests.integration.backup.conftest import PASSWORD, RedisStack, make_stack
from tests.integration.backup.mappings import fill_mappings, snapshot_keys
from tests.support import wait_until

from kongmasker.adapters.probes import NetProbes
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.adapters.storage import DirectoryStore
from kongmasker.api.vocabulary import Component
from kongmasker.config import HealthSettings, Settings
from kongmasker.core.backup.create import BackupJob
from kongmasker.core.backup.manifest import RDB_PATH, Identity
from kongmasker.core.backup.rediscli import labels
from kongmasker.core.backup.restore import PREVIOUS, RestoreFailed, RestoreJob, RestoreRefused
from kongmasker.errors import RuntimeOperationError

pytestmark = pytest.mark.integration

N = 100_000
SETTINGS = Settings(health=HealthSettings(gate_timeout=3.0, poll_interval=0.2))


def take_backup(stack: RedisStack, store: DirectoryStore, name: str = "b1") -> str:
    ref = stack.target.ref
    where = f"{ref.namespace}/{ref.name}/{name}"
    BackupJob(
        stack.runtime,
        store,
        stack.target,
        Identity(ref.namespace, name, name),
        where,
        {"upstream": {"url": "http://127.0.0.1:9"}},
        [PASSWORD],
    ).run()
    return where


def restore(stack: RedisStack, store: DirectoryStore, where: str, runtime=None) -> RestoreJob:
    return RestoreJob(
        runtime or stack.runtime,
        store,
        where,
        stack.target,
        NetProbes(3.0),
        stack.secrets,
        SETTINGS,
    )


def change_data(client) -> None:
    """Deletes, overwrites, adds and re-TTLs keys, as a day of traffic would."""
    keys = sorted(client.scan_iter(match="aws_masker:map:*", count=5000))
    pipe = client.pipeline(transaction=False)
    for k in keys[:1000]:
        pipe.delete(k)
    for k in keys[1000:2000]:
        pipe.set(k, "changed", ex=60)
    for k in keys[2000:2500]:
        pipe.persist(k)
    pipe.execute()
    fill_mappings(client, 5000, seed="new")


def redis_files(stack: RedisStack) -> str:
    out = stack.runtime.exec(stack.target.redis_container, ["ls", "-a", "/data"]).output
    return " ".join(sorted(out.split()))


@pytest.fixture
def filled(redis_stack: RedisStack) -> RedisStack:
    fill_mappings(redis_stack.client, N)
    return redis_stack


@pytest.fixture
def small(redis_stack: RedisStack) -> RedisStack:
    """Refusal and rollback paths do not depend on size: 20k mappings keep them quick."""
    fill_mappings(redis_stack.client, 20_000)
    return redis_stack


def test_restore_after_changes_brings_back_every_key_value_and_ttl(filled, tmp_path):
    store = DirectoryStore(tmp_path)
    before = snapshot_keys(filled.client)
    where = take_backup(filled, store)
    change_data(filled.client)
    assert snapshot_keys(filled.client) != before
    changed_size = filled.client.dbsize()
    result = restore(filled, store, where).run()
    assert snapshot_keys(filled.client) == before
    assert result.keys == len(before)
    assert sum(p.keys for p in result.previous.values()) == changed_size != len(before)
    assert PREVIOUS.rsplit("/", 1)[1] not in redis_files(filled)
    # Redis must come back with the restored data by itself: it loads the rebuilt AOF.
    filled.runtime.stop_container(filled.target.redis_container, timeout=30)
    filled.runtime.start_container(filled.target.redis_container)
    wait_until(filled.client.ping, timeout=30, what="Redis after restart")
    assert snapshot_keys(filled.client) == before


def test_restore_into_a_new_stack(filled, runtime, tmp_path):
    store = DirectoryStore(tmp_path)
    before = snapshot_keys(filled.client)
    where = take_backup(filled, store)
    other = make_stack(runtime, name="fresh")
    try:
        assert other.client.dbsize() == 0
        restore(other, store, where).run()
        assert snapshot_keys(other.client) == before
    finally:
        other.remove()


def test_invalid_backup_is_refused_and_the_stack_is_untouched(small, tmp_path):
    store = DirectoryStore(tmp_path)
    where = take_backup(small, store)
    change_data(small.client)
    rdb = tmp_path / where / RDB_PATH
    rdb.write_bytes(rdb.read_bytes()[:-100])  # truncated
    info = small.runtime.get_container(small.target.redis_container)
    before, files = snapshot_keys(small.client), redis_files(small)
    with pytest.raises(RestoreRefused, match="truncated"):
        restore(small, store, where).run()
    after = small.runtime.get_container(small.target.redis_container)
    assert after.running and after.started_at == info.started_at  # never stopped
    assert snapshot_keys(small.client) == before
    assert redis_files(small) == files


def test_failing_health_gate_after_restore_puts_the_previous_data_back(small, tmp_path):
    """A 'kong' container that runs but never passes Kong's gate: restore stops it, swaps
    the data, starts it again, the gate fails, and the restore must roll back."""
    store = DirectoryStore(tmp_path)
    where = take_backup(small, store)
    change_data(small.client)
    before = snapshot_keys(small.client)
    runtime, ref = small.runtime, small.target.ref
    kong = runtime.create_container(
        ContainerSpec(
            name=ref.container_name(Component.KONG),
            image=small.target.spec.redis.image,
            labels=labels("test-fake-kong"),
            command=("--port", "0"),
        )
    )
    runtime.start_container(kong.id)
    try:
        with pytest.raises(RestoreFailed) as failed:
            restore(small, store, where).run()
        assert failed.value.rolled_back, failed.value.message
        assert "kong did not pass its health gate" in failed.value.message
        assert snapshot_keys(small.client) == before
        assert PREVIOUS.rsplit("/", 1)[1] not in redis_files(small)
    finally:
        runtime.remove_container(kong.id, force=True)


@dataclasses.dataclass
class FailingStart:
    """The real Docker runtime, except that starting `container` fails once.

    A Docker engine that refuses one start at exactly this step cannot be produced on
    demand, so this one call is the only stand-in; every other call is the real engine."""

    inner: object
    container: str
    failed: bool = False

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def start_container(self, container_id: str) -> None:
        if container_id == self.container and not self.failed:
            self.failed = True
            raise RuntimeOperationError("injected: engine refused to start the container")
        self.inner.start_container(container_id)


def test_engine_failure_mid_restore_rolls_back(small, tmp_path):
    store = DirectoryStore(tmp_path)
    where = take_backup(small, store)
    change_data(small.client)
    before = snapshot_keys(small.client)
    redis_id = small.runtime.get_container(small.target.redis_container).id
    faulty = FailingStart(small.runtime, redis_id)
    with pytest.raises(RestoreFailed) as failed:
        restore(small, store, where, runtime=faulty).run()
    assert faulty.failed and failed.value.rolled_back
    wait_until(small.client.ping, timeout=30, what="Redis after rollback")
    assert snapshot_keys(small.client) == before
    manifest = json.loads((Path(tmp_path) / where / "manifest.json").read_text())
    assert manifest["redis"]["keys"] != len(before)  # the backup really differed


class Crash(BaseException):
    """Stands in for the operator process dying: not an Exception, so no rollback runs."""


@dataclasses.dataclass
class CrashOnStart(FailingStart):
    def start_container(self, container_id: str) -> None:
        if container_id == self.container and not self.failed:
            self.failed = True
            raise Crash()
        self.inner.start_container(container_id)


def test_restore_cut_off_by_a_crash_is_recovered_from_the_set_aside_data(small, tmp_path):
    store = DirectoryStore(tmp_path)
    where = take_backup(small, store)
    change_data(small.client)
    before = snapshot_keys(small.client)
    redis_id = small.runtime.get_container(small.target.redis_container).id
    with pytest.raises(Crash):
        restore(small, store, where, runtime=CrashOnStart(small.runtime, redis_id)).run()
    assert PREVIOUS.rsplit("/", 1)[1] in redis_files_stopped(small)
    # Meanwhile a reconcile starts Redis again on whatever /data holds now.
    small.runtime.start_container(redis_id)
    wait_until(small.client.ping, timeout=30, what="Redis started by 'the reconcile'")
    assert snapshot_keys(small.client) != before
    message = restore(small, store, where).recover_interrupted()
    assert "previous data put back" in message
    assert snapshot_keys(small.client) == before
    assert PREVIOUS.rsplit("/", 1)[1] not in redis_files(small)
    assert "nothing to put back" in restore(small, store, where).recover_interrupted()


def redis_files_stopped(stack: RedisStack) -> str:
    """/data listing while the stack's Redis is stopped (read through a throwaway container)."""
    from kongmasker.core.backup.rediscli import ScratchRedis

    with ScratchRedis(stack.runtime, stack.target.spec.redis.image, "restore",
                      volume=stack.target.volume, data_dir="/tmp") as shell:  # fmt: skip
        return " ".join(sorted(shell.shell("ls -a /data").split()))
