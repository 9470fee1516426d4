"""The StackBackup controller's schedule and status logic, on in-memory fakes of the
Kubernetes API and a directory store (no engine is needed for these paths)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kongmasker.adapters.storage import DirectoryStore
from kongmasker.config import Settings
from kongmasker.core.backup import controller as core
from kongmasker.errors import NotFound

pytestmark = pytest.mark.unit
T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


class FakeApi:
    """StackBackup objects in a dict; status patches replace status like the API does."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def get_backup(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    def list_backups(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        key, value = label_selector.split("=")
        return [
            o for o in self.objects.values() if o["metadata"].get("labels", {}).get(key) == value
        ]

    def create_backup(self, namespace: str, body: dict[str, Any]) -> bool:
        name = body["metadata"]["name"]
        if name in self.objects:
            return False
        body["metadata"].setdefault("creationTimestamp", core.now_iso(T0))
        self.objects[name] = body
        return True

    def delete_backup(self, namespace: str, name: str) -> None:
        self.objects.pop(name, None)

    def detach_backup(self, namespace: str, name: str, label: str) -> None:
        meta = self.objects[name]["metadata"]
        meta.pop("ownerReferences", None)
        meta.get("labels", {}).pop(label, None)

    def patch_backup_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        if name not in self.objects:
            raise NotFound(name)
        self.objects[name]["status"] = dict(status)


def deps(api: FakeApi, root) -> core.BackupDeps:
    def no(*_: Any) -> Any:
        raise AssertionError("not used on this path")

    return core.BackupDeps(
        runtime_for=no, secrets=no, stacks=no, api=api, probes=no, settings=Settings(),
        store_for=lambda storage, ns, secrets, host: DirectoryStore(root),
    )  # fmt: skip


def schedule(api: FakeApi, cron: str = "0 * * * *", **retention: Any) -> core.BackupObject:
    body = {
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "u1", "generation": 1,
                     "creationTimestamp": core.now_iso(T0 - dt.timedelta(minutes=1))},
        "spec": {"stackRef": {"name": "demo"}, "type": "Schedule",
                 "schedule": {"cron": cron, "retention": retention}},
    }  # fmt: skip
    api.objects["nightly"] = body
    return core.BackupObject.from_body(body)


def tick(api: FakeApi, root, at: dt.datetime) -> list[str]:
    obj = core.BackupObject.from_body(api.objects["nightly"])
    return [e.reason for e in core.tick_schedule(obj, deps(api, root), at)]


def test_schedule_creates_one_child_per_cron_time(tmp_path):
    api = FakeApi()
    schedule(api)
    assert tick(api, tmp_path, T0 + dt.timedelta(minutes=5)) == ["BackupCreated"]
    child = api.objects["nightly-20261126120000"]
    assert child["spec"]["type"] == "Backup" and child["spec"]["stackRef"] == {"name": "demo"}
    assert child["metadata"]["labels"]["kongmasker.io/schedule"] == "nightly"
    assert child["metadata"]["ownerReferences"][0]["uid"] == "u1"
    status = api.objects["nightly"]["status"]
    assert status["phase"] == "Scheduled"
    assert status["nextScheduleTime"] == "2026-11-26T13:00:00Z"
    assert tick(api, tmp_path, T0 + dt.timedelta(minutes=6)) == []  # same time: nothing new


def test_retention_deletes_objects_and_files_but_keeps_newest_validated(tmp_path):
    api = FakeApi()
    schedule(api, keepLast=1)
    store = DirectoryStore(tmp_path)
    parent = core.BackupObject.from_body(api.objects["nightly"])
    parent_spec = core.BackupSpec.from_dict(parent.spec)
    for i, phase in enumerate(["Validated", "Failed", "Failed"]):
        at = T0 + dt.timedelta(hours=i)
        api.create_backup("ns", core.child_body(parent, parent_spec, at))
        name = f"nightly-{at:%Y%m%d%H%M%S}"
        api.objects[name]["metadata"]["creationTimestamp"] = core.now_iso(at)
        api.objects[name]["status"] = {"phase": phase}
        store.put(f"ns/demo/{name}/manifest.json", b"{}")
        store.put(f"ns/demo/{name}/redis/dump.rdb", b"REDIS")
    api.objects["nightly"]["status"] = {
        "lastScheduleTime": core.now_iso(T0 + dt.timedelta(hours=2))
    }
    events = tick(api, tmp_path, T0 + dt.timedelta(hours=2, minutes=30))
    assert events == ["RetentionDeleted"]
    assert set(api.objects) == {"nightly", "nightly-20261126120000", "nightly-20261126140000"}
    assert not (tmp_path / "ns/demo/nightly-20261126130000").exists()
    assert (tmp_path / "ns/demo/nightly-20261126120000/manifest.json").exists()
    status = api.objects["nightly"]["status"]
    assert status["lastSuccessfulBackup"] == "nightly-20261126120000"
    assert status["backups"] == ["nightly-20261126140000", "nightly-20261126120000"]


def test_invalid_cron_fails_once_with_the_reason(tmp_path):
    api = FakeApi()
    schedule(api, cron="61 * * * *")
    assert tick(api, tmp_path, T0) == ["InvalidSchedule"]
    status = api.objects["nightly"]["status"]
    assert status["phase"] == "Failed" and "61 * * * *" in status["failureReason"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSchedule"
    assert tick(api, tmp_path, T0 + dt.timedelta(seconds=5)) == []  # no Event storm


def test_suspended_schedule_creates_nothing(tmp_path):
    api = FakeApi()
    schedule(api)
    api.objects["nightly"]["spec"]["schedule"]["suspend"] = True
    assert tick(api, tmp_path, T0 + dt.timedelta(hours=3)) == []
    assert set(api.objects) == {"nightly"}
    assert api.objects["nightly"]["status"]["phase"] == "Scheduled"


def test_status_book_keeps_transition_time_while_status_is_unchanged():
    api = FakeApi()
    obj = schedule(api)
    book = core.StatusBook(obj, api)
    book.set(conditions={"Validated": (True, "ValidationPassed", "ok")})
    first = api.objects["nightly"]["status"]["conditions"][0]["lastTransitionTime"]
    book.status["conditions"][0]["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    book.set(conditions={"Validated": (True, "ValidationPassed", "still ok")})
    kept = api.objects["nightly"]["status"]["conditions"][0]
    assert kept["lastTransitionTime"] == "2000-01-01T00:00:00Z" and kept["message"] == "still ok"
    book.set(conditions={"Validated": (False, "ChecksumMismatch", "bad")})
    flipped = api.objects["nightly"]["status"]["conditions"][0]
    assert flipped["lastTransitionTime"] != "2000-01-01T00:00:00Z" and first
    assert api.objects["nightly"]["status"]["observedGeneration"] == 1


def test_schedule_reports_a_new_generation_even_when_nothing_else_changed(tmp_path):
    api = FakeApi()
    schedule(api)
    tick(api, tmp_path, T0)
    assert api.objects["nightly"]["status"]["observedGeneration"] == 1
    api.objects["nightly"]["metadata"]["generation"] = 2  # e.g. retention edited
    tick(api, tmp_path, T0 + dt.timedelta(seconds=5))
    assert api.objects["nightly"]["status"]["observedGeneration"] == 2


def test_failures_are_counted_in_the_backup_metrics(tmp_path):
    from prometheus_client import REGISTRY

    labels = {"namespace": "ns", "stack": "demo", "operation": "backup",
              "reason": "InvalidSchedule"}  # fmt: skip
    before = REGISTRY.get_sample_value("kongmasker_backup_failures_total", labels) or 0.0
    api = FakeApi()
    schedule(api, cron="not a cron at all")
    tick(api, tmp_path, T0)
    assert REGISTRY.get_sample_value("kongmasker_backup_failures_total", labels) == before + 1


class ClosingStore(DirectoryStore):
    closed = 0

    def close(self) -> None:
        ClosingStore.closed += 1


def test_retention_uses_one_store_per_stack_and_closes_it(tmp_path):
    api = FakeApi()
    schedule(api, keepLast=1)
    parent = core.BackupObject.from_body(api.objects["nightly"])
    parent_spec = core.BackupSpec.from_dict(parent.spec)
    for i in range(3):
        at = T0 + dt.timedelta(hours=i)
        api.create_backup("ns", core.child_body(parent, parent_spec, at))
        name = f"nightly-{at:%Y%m%d%H%M%S}"
        api.objects[name]["metadata"]["creationTimestamp"] = core.now_iso(at)
        api.objects[name]["status"] = {"phase": "Failed"}
    api.objects["nightly"]["status"] = {
        "lastScheduleTime": core.now_iso(T0 + dt.timedelta(hours=2))
    }
    made: list[ClosingStore] = []

    def store_for(storage, ns, secrets, host):
        made.append(ClosingStore(tmp_path))
        return made[-1]

    d = deps(api, tmp_path)
    d.store_for = store_for
    ClosingStore.closed = 0
    obj = core.BackupObject.from_body(api.objects["nightly"])
    events = core.tick_schedule(obj, d, T0 + dt.timedelta(hours=2, minutes=30))
    assert [e.reason for e in events] == ["RetentionDeleted", "RetentionDeleted"]
    assert len(made) == 1 and ClosingStore.closed == 1


class NoRuntime:
    """make_store must not touch the engine: the store's helper is made on first use."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"runtime.{name} called")


def test_make_store_puts_directories_on_the_stacks_docker_host():
    from kongmasker.adapters.hoststore import DockerHostDirectoryStore
    from kongmasker.adapters.storage import StorageError
    from kongmasker.api.backup import StorageSpec

    spec = StorageSpec.from_dict({"directory": {"path": "/srv/backups"}})
    host = core.StoreHost(NoRuntime(), "kongmasker/redis:dev", "tcp://10.0.0.7:2376")
    store = core.make_store(spec, "ns", None, lambda: host)
    assert isinstance(store, DockerHostDirectoryStore)
    assert store.image == "kongmasker/redis:dev" and store.runtime is host.runtime
    assert store.labels["app.kubernetes.io/part-of"] == "kongmasker"
    assert store.labels["kongmasker.io/scratch"] == "store"
    assert store.url("ns/demo/b1") == "docker-host://10.0.0.7:2376/srv/backups/ns/demo/b1"
    local = core.make_store(spec, "ns", None, lambda: core.StoreHost(NoRuntime(), "r", ""))
    assert local.url("k") == "docker-host://localhost/srv/backups/k"
    store.close()  # no helper was made: nothing to remove
    with pytest.raises(StorageError, match="Docker host"):
        core.make_store(spec, "ns", None)


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("tcp://10.0.0.7:2376", "10.0.0.7:2376"),
        ("ssh://deploy@docker-1.example", "docker-1.example"),
        ("unix:///var/run/docker.sock", "localhost"),
        ("", "localhost"),
    ],
)
def test_engine_host_names(url, name):
    from kongmasker.adapters.hoststore import engine_host

    assert engine_host(url) == name
