"""The S3 store against a real S3-compatible server on 127.0.0.1: MinIO (tests/integration/
backup/minio.py), started per module with its own data directory and root credentials. SigV4
signatures are verified by MinIO, so a wrong secret must fail. Then a whole backup ->
validate -> restore goes through S3."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from tests.integration.backup.conftest import PASSWORD, RedisStack
from tests.integration.backup.mappings import fill_mappings, snapshot_keys
from tests.integration.backup.minio import ACCESS, SECRET, S3Server, minio

from kongmasker.adapters.storage import StorageError
from kongmasker.core.backup.create import BackupJob
from kongmasker.core.backup.manifest import RDB_PATH, Identity
from kongmasker.core.backup.restore import RestoreJob
from kongmasker.core.backup.validate import validate_backup
from kongmasker.errors import NotFound

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with minio(tmp_path_factory.mktemp("minio")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"kmb-{uuid.uuid4().hex[:12]}"
    s3.make_bucket(name)
    return name


def test_put_get_list_delete(s3: S3Server, bucket: str) -> None:
    store = s3.store(bucket, prefix="backups/v1")
    store.put("ns/demo/b1/manifest.json", b"{}")
    store.put("ns/demo/b1/redis/dump.rdb", b"REDIS" * 1000)
    store.put("ns/demo/b2/manifest.json", b"{}")
    store.put("ns/demo/with space+plus/x.txt", b"odd key")
    assert store.get("ns/demo/b1/redis/dump.rdb") == b"REDIS" * 1000
    assert store.get("ns/demo/with space+plus/x.txt") == b"odd key"
    assert store.list("ns/demo/b1") == ["ns/demo/b1/manifest.json", "ns/demo/b1/redis/dump.rdb"]
    store.delete("ns/demo/b1/manifest.json")
    assert store.list("ns/demo/b1") == ["ns/demo/b1/redis/dump.rdb"]
    with pytest.raises(NotFound):
        store.get("ns/demo/b1/manifest.json")
    assert (
        store.url("ns/demo/b2/manifest.json")
        == f"s3://{bucket}/backups/v1/ns/demo/b2/manifest.json"
    )


def test_listing_pages_through_more_than_a_thousand_keys(s3: S3Server, bucket: str) -> None:
    store = s3.store(bucket)
    for i in range(1005):
        store.put(f"many/k{i:05d}", b"x")
    keys = store.list("many")
    assert len(keys) == 1005 and keys[0] == "many/k00000" and keys[-1] == "many/k01004"


def test_wrong_secret_is_refused_by_the_server(s3: S3Server, bucket: str) -> None:
    with pytest.raises(StorageError, match="403"):
        s3.store(bucket, secret="not-the-secret").put("x", b"y")


def test_backup_validate_restore_through_s3(
    s3: S3Server, bucket: str, redis_stack: RedisStack
) -> None:
    from kongmasker.adapters.probes import NetProbes
    from kongmasker.config import HealthSettings, Settings

    store = s3.store(bucket, prefix="prod")
    fill_mappings(redis_stack.client, 20_000)
    before = snapshot_keys(redis_stack.client)
    ref = redis_stack.target.ref
    where = f"{ref.namespace}/{ref.name}/s3-b1"
    BackupJob(redis_stack.runtime, store, redis_stack.target, Identity(ref.namespace, "s3-b1"),
              where, {"upstream": {"url": "x"}}, [PASSWORD]).run()  # fmt: skip
    assert validate_backup(redis_stack.runtime, store, where).valid
    redis_stack.client.flushall()
    settings = Settings(health=HealthSettings(gate_timeout=30))
    RestoreJob(redis_stack.runtime, store, where, redis_stack.target, NetProbes(3.0),
               redis_stack.secrets, settings).run()  # fmt: skip
    assert snapshot_keys(redis_stack.client) == before
    # Tampering in the bucket is seen as in a directory.
    store.put(f"{where}/{RDB_PATH}", store.get(f"{where}/{RDB_PATH}")[:-10])
    verdict = validate_backup(redis_stack.runtime, store, where)
    assert not verdict.valid and "truncated" in verdict.message


class _Secrets:
    """Secret values as the operator's SecretReader returns them (the Kubernetes API is
    exercised by the e2e tests; here only the Secret -> S3 store wiring is under test)."""

    def __init__(self, data: dict[str, dict[str, bytes]]) -> None:
        self.data = data

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        if name not in self.data:
            raise NotFound(f"Secret {namespace}/{name} not found")
        return self.data[name]


def test_store_from_a_storage_spec_and_its_secret(s3: S3Server, bucket: str) -> None:
    from kongmasker.api.backup import StorageSpec
    from kongmasker.core.backup.controller import make_store
    from kongmasker.errors import InvalidSpec

    spec = StorageSpec.from_dict(
        {"s3": {"bucket": bucket, "endpoint": s3.endpoint, "prefix": "/p/",
                "credentialsSecretRef": {"name": "creds"}}}
    )  # fmt: skip
    secrets = _Secrets(
        {"creds": {"AWS_ACCESS_KEY_ID": ACCESS.encode(), "AWS_SECRET_ACCESS_KEY": SECRET.encode()}}
    )
    store = make_store(spec, "ns", secrets)
    store.put("a/b", b"c")
    assert store.url("a/b") == f"s3://{bucket}/p/a/b"
    assert s3.store(bucket).get("p/a/b") == b"c"
    with pytest.raises(InvalidSpec, match="missing"):
        make_store(spec, "ns", _Secrets({}))
    with pytest.raises(InvalidSpec, match="AWS_SECRET_ACCESS_KEY"):
        make_store(spec, "ns", _Secrets({"creds": {"AWS_ACCESS_KEY_ID": b"x"}}))
