"""The Docker-host directory store (adapters/hoststore.py) on the real dockerd.

Here the tests run on the Docker host itself, so they can look at the host directory
directly and check what the store wrote there (content, modes, no leftovers). The last test
runs the store from a process whose view of the filesystem differs from the host's: inside
a container of the operator's image that has the Docker socket but not the directory. The
files must still land on the host, and the directory must not exist inside that container.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from tests.support import REPO_ROOT

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.hoststore import STAGING, DockerHostDirectoryStore
from kongmasker.adapters.storage import StorageError
from kongmasker.core.backup.rediscli import LABEL_SCRATCH, labels
from kongmasker.errors import NotFound

pytestmark = pytest.mark.integration

STORE_LABELS = labels("store")


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A root that does not exist yet (the store creates it)."""
    return tmp_path / "backups"


@pytest.fixture
def store(
    runtime: DockerRuntime, redis_image: str, host_dir: Path
) -> Iterator[DockerHostDirectoryStore]:
    s = DockerHostDirectoryStore(runtime, str(host_dir), redis_image, labels=STORE_LABELS)
    yield s
    s.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_lands_on_the_host_with_private_modes(
    store: DockerHostDirectoryStore, host_dir: Path
) -> None:
    store.put("ns/demo/b1/manifest.json", b'{"v": 1}')
    store.put("ns/demo/b1/redis/dump.rdb", b"REDIS0011")
    store.put("ns/demo/b2/manifest.json", b"{}")
    assert store.get("ns/demo/b1/manifest.json") == b'{"v": 1}'
    assert store.list("ns/demo/b1") == ["ns/demo/b1/manifest.json", "ns/demo/b1/redis/dump.rdb"]
    assert store.list("ns/demo") == [
        "ns/demo/b1/manifest.json",
        "ns/demo/b1/redis/dump.rdb",
        "ns/demo/b2/manifest.json",
    ]
    assert store.list("ns/other") == []
    assert store.url("ns/demo/b1") == f"docker-host://localhost{host_dir}/ns/demo/b1"

    # On the host: the files themselves, 0600; every directory the store made 0700.
    assert (host_dir / "ns/demo/b1/redis/dump.rdb").read_bytes() == b"REDIS0011"
    for path in [host_dir, *host_dir.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert mode(path) == want, f"{path} has mode {oct(mode(path))}"

    store.put("ns/demo/b1/manifest.json", b'{"v": 2}')  # replace
    assert (host_dir / "ns/demo/b1/manifest.json").read_bytes() == b'{"v": 2}'

    store.delete("ns/demo/b1/redis/dump.rdb")
    store.delete("ns/demo/b1/redis/dump.rdb")  # missing: no error
    with pytest.raises(NotFound):
        store.get("ns/demo/b1/redis/dump.rdb")
    assert not (host_dir / "ns/demo/b1/redis").exists()  # emptied directory removed
    store.delete("ns/demo/b1/manifest.json")
    store.delete("ns/demo/b2/manifest.json")
    assert sorted(p.name for p in host_dir.iterdir()) == [STAGING]  # root and staging stay
    assert list((host_dir / STAGING).iterdir()) == []


def test_existing_root_keeps_its_mode(
    runtime: DockerRuntime, redis_image: str, tmp_path: Path
) -> None:
    root = tmp_path / "shared"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    with DockerHostDirectoryStore(runtime, str(root), redis_image, labels=STORE_LABELS) as s:
        s.put("a/b", b"x")
    assert mode(root) == 0o755
    assert mode(root / "a") == 0o700 and mode(root / "a/b") == 0o600


def test_big_object_is_intact(store: DockerHostDirectoryStore, host_dir: Path) -> None:
    data = os.urandom(48 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    store.put("ns/demo/big/redis/dump.rdb", data)
    assert hashlib.sha256(store.get("ns/demo/big/redis/dump.rdb")).hexdigest() == digest
    on_host = (host_dir / "ns/demo/big/redis/dump.rdb").read_bytes()
    assert hashlib.sha256(on_host).hexdigest() == digest


def test_writes_are_atomic_for_readers(
    store: DockerHostDirectoryStore, runtime: DockerRuntime, redis_image: str, host_dir: Path
) -> None:
    """A reader (its own store, so its own helper) polling a key while it is overwritten
    with different 8 MiB contents only ever sees one whole version; nothing temporary is
    ever listed, and the staging directory is empty afterwards."""
    versions = [bytes([i]) * (8 * 1024 * 1024) for i in range(4)]
    digests = {hashlib.sha256(v).hexdigest() for v in versions}
    key = "ns/demo/atomic/redis/dump.rdb"
    store.put(key, versions[0])
    seen: list[str] = []
    listings: list[list[str]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with DockerHostDirectoryStore(
                runtime, str(host_dir), redis_image, labels=STORE_LABELS
            ) as reader:
                while not done.is_set() or len(seen) < 3:
                    seen.append(hashlib.sha256(reader.get(key)).hexdigest())
                    listings.append(reader.list("ns/demo/atomic"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(3):
            for v in versions:
                store.put(key, v)
    finally:
        done.set()
        thread.join(timeout=120)
    assert not errors, errors
    print(f"{len(seen)} reads saw {len(set(seen))} versions")
    assert seen and set(seen) <= digests, "a reader saw a partial or mixed file"
    assert len(set(seen)) >= 2, "the reader never overlapped a write"
    assert all(listing == [key] for listing in listings), listings
    assert list((host_dir / STAGING).iterdir()) == []


@pytest.mark.parametrize(
    "key",
    ["", "/", "a/../b", "../etc/passwd", "./a", "a//b", "a/./b", "a/.tmp-x/b", ".tmp-1", "a\nb"],
)
def test_invalid_keys_are_refused_before_touching_the_engine(
    store: DockerHostDirectoryStore, key: str
) -> None:
    for call in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.delete(key)):
        with pytest.raises(StorageError, match="invalid backup key"):
            call()
    assert store.helper_id == ""  # no helper was even created


def test_invalid_roots_are_refused(runtime: DockerRuntime, redis_image: str) -> None:
    for root in ("", "/", "relative/dir"):
        with pytest.raises(StorageError, match="absolute path"):
            DockerHostDirectoryStore(runtime, root, redis_image, labels=STORE_LABELS)


def test_one_labelled_helper_per_use_and_gone_after_close(
    runtime: DockerRuntime, redis_image: str, host_dir: Path, docker_host: str
) -> None:
    before = {c.id for c in runtime.list_containers({LABEL_SCRATCH: "store"})}
    s = DockerHostDirectoryStore(runtime, str(host_dir), redis_image, labels=STORE_LABELS)
    assert s.helper_id == ""  # created lazily
    for i in range(5):
        s.put(f"ns/demo/b/{i}", b"x")
    s.get("ns/demo/b/0")
    s.list("ns/demo")
    helpers = [c for c in runtime.list_containers({LABEL_SCRATCH: "store"}) if c.id not in before]
    assert [c.id for c in helpers] == [s.helper_id]  # one helper for every operation
    info = helpers[0]
    assert info.labels["app.kubernetes.io/part-of"] == "kongmasker"
    client = docker.APIClient(base_url=docker_host)
    try:
        raw = client.inspect_container(info.id)
    finally:
        client.close()
    assert raw["HostConfig"]["NetworkMode"] == "none"
    assert raw["HostConfig"]["RestartPolicy"]["Name"] in ("no", "")
    assert raw["HostConfig"]["Binds"] == [f"{host_dir.parent}:/kongmasker-host:rw"]
    s.close()
    s.close()  # idempotent
    assert runtime.get_container(info.id) is None


def test_a_vanished_helper_is_replaced(
    store: DockerHostDirectoryStore, runtime: DockerRuntime
) -> None:
    store.put("ns/demo/b/one", b"1")
    first = store.helper_id
    runtime.remove_container(first, force=True)  # e.g. the engine restarted
    assert store.get("ns/demo/b/one") == b"1"
    assert store.helper_id not in ("", first)
    runtime.remove_container(store.helper_id, force=True)
    store.put("ns/demo/b/two", b"2")
    runtime.remove_container(store.helper_id, force=True)
    with pytest.raises(NotFound):
        store.get("ns/demo/b/missing")  # a missing file, not a missing helper
    assert store.list("ns/demo/b") == ["ns/demo/b/one", "ns/demo/b/two"]


def test_unwritable_root_is_a_storage_error_and_leaves_no_helper(
    runtime: DockerRuntime, redis_image: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with DockerHostDirectoryStore(
        runtime, str(blocker / "backups"), redis_image, labels=STORE_LABELS
    ) as s:
        assert s.list("ns/demo") == []  # reading an absent root is empty, not an error
        with pytest.raises(StorageError, match="on the Docker host"):
            s.put("ns/demo/b/manifest.json", b"{}")
        helper = s.helper_id
    assert runtime.get_container(helper) is None


def test_missing_image_is_a_storage_error(runtime: DockerRuntime, host_dir: Path) -> None:
    with (
        DockerHostDirectoryStore(
            runtime, str(host_dir), "kongmasker/no-such-image:dev", labels=STORE_LABELS
        ) as s,
        pytest.raises(StorageError, match="on the Docker host"),
    ):
        s.put("a/b", b"x")


# -- a process that cannot see the host directory ---------------------------------------------

_IN_CONTAINER = """
import json, os, sys
from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.hoststore import DockerHostDirectoryStore
root, image, labels = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with DockerHostDirectoryStore(DockerRuntime.connect(), root, image, labels=labels) as s:
    s.put("ns/demo/b1/manifest.json", b"written from a container")
    out = {"list": s.list("ns"), "get": s.get("ns/demo/b1/manifest.json").decode(),
           "url": s.url("ns/demo/b1"), "root_visible_here": os.path.exists(root)}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def operator_image(docker_host: str) -> str:
    """The operator's image, built from this checkout (unchanged inputs: no rebuild)."""
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-images.sh"), "operator"], check=True)
    return "kongmasker/operator:dev"


def test_store_used_from_a_container_writes_on_the_docker_host(
    operator_image: str, redis_image: str, docker_host: str, host_dir: Path
) -> None:
    """The store runs inside a container of the operator's image (its own filesystem; the
    Docker socket mounted, the backup directory not), as an operator in a pod would. The
    file must appear in the host's directory and nowhere in the container."""
    socket_path = docker_host.removeprefix("unix://")
    client = docker.DockerClient(base_url=docker_host)
    name = f"km-test-hoststore-{uuid.uuid4().hex[:8]}"
    try:
        container = client.containers.run(
            operator_image,
            entrypoint=["/opt/kongmasker/bin/python", "-c", _IN_CONTAINER],
            command=[str(host_dir), redis_image, json.dumps(STORE_LABELS)],
            name=name,
            labels={"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": name},
            environment={"DOCKER_HOST": "unix:///var/run/docker.sock"},
            volumes={socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"}},
            group_add=[str(os.stat(socket_path).st_gid)],
            network_mode="none",
            detach=True,
        )
        exit_code = container.wait(timeout=120)["StatusCode"]
        logs = container.logs().decode(errors="replace")
        assert exit_code == 0, logs
    finally:
        for c in client.containers.list(all=True, filters={"name": name}):
            c.remove(force=True)
        client.close()
    result = json.loads(logs.split("RESULT ", 1)[1])
    assert result["root_visible_here"] is False
    assert result["list"] == ["ns/demo/b1/manifest.json"]
    assert result["get"] == "written from a container"
    assert result["url"] == f"docker-host://localhost{host_dir}/ns/demo/b1"
    on_host = host_dir / "ns/demo/b1/manifest.json"
    assert on_host.read_bytes() == b"written from a container"
    assert mode(on_host) == 0o600 and mode(host_dir) == 0o700
