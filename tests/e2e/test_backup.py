"""StackBackup end to end: the operator (`python -m kongmasker`, a subprocess) on the real
kube-apiserver and dockerd runs real stacks (Redis -> gateway -> Nginx -> Backend, mock
upstream); backups, restores and schedules are requested as StackBackup objects.

* 100k masking mappings: backup, change the data, restore into the same stack and into a
  new stack; every key, value and TTL class comes back; the stacks are Ready afterwards.
* requests through Nginx keep succeeding while a backup is taken.
* corrupted, truncated and tampered backups: restore refused (Invalid, with the reason),
  the backup itself marked Invalid, the stack's containers and data untouched.
* a schedule fires on its cron and retention keeps the newest validated backup while
  later ones fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from tests.integration.backup.mappings import fill_mappings, snapshot_keys
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.api import naming

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-backup-redis-pw"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Env:
    kubectl: Kubectl
    runtime: DockerRuntime
    namespace: str
    backups: Path
    mock_url: str
    stacks: dict[str, dict[str, int]] = field(default_factory=dict)

    def apply(self, obj: dict[str, Any]) -> None:
        obj.setdefault("metadata", {})["namespace"] = self.namespace
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json").stdout
        return dict(json.loads(out))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get("stackbackup", name).get("status") or {})

    def wait_phase(self, name: str, phases: tuple[str, ...], timeout: float = 300) -> dict:
        def reached() -> dict | None:
            status = self.status(name)
            return status if status.get("phase") in phases else None

        return wait_until(reached, timeout=timeout, what=f"{name} to reach {phases}", interval=0.5)

    def create_stack(self, name: str) -> None:
        ports = {k: free_port() for k in ("redis", "proxy", "admin", "status", "nginx", "backend")}
        self.stacks[name] = ports
        spec = {
            "upstream": {"url": self.mock_url, "apiKeySecretRef": {"name": "up", "key": "api-key"}},
            "redis": {"port": ports["redis"], "passwordSecretRef": {"name": "redis"}},
            "kong": {
                "proxyPort": ports["proxy"],
                "adminPort": ports["admin"],
                "statusPort": ports["status"],
            },
            "nginx": {"port": ports["nginx"]},
            "backend": {"port": ports["backend"]},
            "stopGracePeriodSeconds": 5,
        }
        self.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "KongMaskerStack",
                    "metadata": {"name": name}, "spec": spec})  # fmt: skip

    def wait_ready(self, name: str, timeout: int = 300) -> None:
        self.kubectl(
            "wait", "--for=condition=Ready", f"kongmaskerstack/{name}", "-n", self.namespace,
            f"--timeout={timeout}s",
        )  # fmt: skip

    def redis(self, stack: str) -> redis.Redis:
        port = self.stacks[stack]["redis"]
        return redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=60)

    def request(self, stack: str, client: httpx.Client, text: str) -> httpx.Response:
        url = f"http://127.0.0.1:{self.stacks[stack]['nginx']}/v1/messages"
        body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
        return client.post(url, json=body, headers={"x-api-key": "k"})

    def backup(self, name: str, stack: str, **spec: Any) -> None:
        spec = {"stackRef": {"name": stack}, "type": "Backup",
                "storage": {"directory": {"path": str(self.backups)}}, **spec}  # fmt: skip
        self.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "StackBackup",
                    "metadata": {"name": name}, "spec": spec})  # fmt: skip

    def restore(self, name: str, stack: str, source: str) -> None:
        spec = {"stackRef": {"name": stack}, "type": "Restore", "restore": {"backupName": source}}
        self.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "StackBackup",
                    "metadata": {"name": name}, "spec": spec})  # fmt: skip

    def files(self, stack: str, backup: str) -> Path:
        return self.backups / self.namespace / stack / backup

    def containers(self, stack: str) -> dict[str, tuple[str, str]]:
        """component -> (container id, started at): a restart shows up as a change."""
        from kongmasker.api.vocabulary import LABEL_COMPONENT, LABEL_STACK_NAME

        infos = self.runtime.list_containers({LABEL_STACK_NAME: stack})
        return {
            i.labels[LABEL_COMPONENT]: (i.id, i.started_at)
            for i in infos
            if i.labels.get("kongmasker.io/stack-namespace") == self.namespace
        }

    def events(self, name: str) -> list[str]:
        out = self.kubectl(
            "get", "events", "-n", self.namespace, "--field-selector",
            f"involvedObject.name={name}", "-o", "jsonpath={.items[*].reason}",
        ).stdout  # fmt: skip
        return out.split()


STACK_IMAGES = ("redis", "gateway", "nginx", "backend", "mockupstream")


@pytest.fixture(scope="module")
def env(kubectl: Kubectl, kubeconfig: str, docker_host: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:  # fmt: skip
    # Only the stack's images (the operator runs from source here); unchanged: no rebuild.
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-images.sh"), *STACK_IMAGES], check=True)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for crd in ("kongmaskerstacks.kongmasker.io", "stackbackups.kongmasker.io"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    namespace = f"kmb-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    secrets = (
        ("redis", "password", PASSWORD),
        ("up", "api-key", "sk-test"),
        ("signing", "signing-key", "e2e-signing-key-0123456789"),
    )
    for name, key, value in secrets:
        kubectl(
            "create", "secret", "generic", name, "-n", namespace, f"--from-literal={key}={value}"
        )
    runtime = DockerRuntime.connect(docker_host)
    mock_port = free_port()
    mock = runtime.create_container(
        ContainerSpec(
            name=f"kmb-mock-{namespace}",
            image="kongmasker/mockupstream:dev",
            env={"MOCK_LISTEN": f"127.0.0.1:{mock_port}"},
            labels={"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": namespace},
        )
    )
    runtime.start_container(mock.id)
    backups = tmp_path_factory.mktemp("backups")
    log = (tmp_path_factory.mktemp("operator") / "operator.log").open("w")
    operator = subprocess.Popen(
        [sys.executable, "-m", "kongmasker", "--namespace", namespace],
        env={**os.environ, "KUBECONFIG": kubeconfig, "DOCKER_HOST": docker_host,
             "KONGMASKER_HEALTH_GATE_TIMEOUT": "120",
             # The masking canary (issue 5) writes mappings into the stacks' Redis: these
             # tests compare Redis contents key by key, so it is off here.
             "KONGMASKER_MONITOR_CANARY_INTERVAL": "0",
             # The operator's limits (issue 11): this run's directory, a 10 s schedule.
             "KONGMASKER_BACKUP_DIRECTORY_ROOTS": f"{backups},/proc",
             "KONGMASKER_BACKUP_MIN_SCHEDULE_INTERVAL": "5"},
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
    )  # fmt: skip
    e = Env(kubectl, runtime, namespace, backups, f"http://127.0.0.1:{mock_port}")
    try:
        wait_until(lambda: httpx.get(f"{e.mock_url}/health").status_code == 200,
                   timeout=60, what="mock upstream")  # fmt: skip
        yield e
    finally:
        for stack in list(e.stacks):
            kubectl("delete", "kongmaskerstack", stack, "-n", namespace, "--timeout=120s",
                    check=False)  # fmt: skip
        kubectl("delete", "stackbackups", "--all", "-n", namespace, "--wait=false", check=False)
        operator.terminate()
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        log.close()
        runtime.remove_container(mock.id, force=True)
        for info in runtime.list_containers({"kongmasker.io/stack-namespace": namespace}):
            runtime.remove_container(info.id, force=True)
        for stack in e.stacks:
            runtime.remove_volume(naming.redis_volume(namespace, stack))
        runtime.close()


def test_backup_restore_100k_mappings_same_and_new_stack(env: Env) -> None:
    env.create_stack("alpha")
    env.wait_ready("alpha")
    client = env.redis("alpha")
    fill_mappings(client, 100_000)
    before = snapshot_keys(client)

    env.backup("alpha-b1", "alpha")
    status = env.wait_phase("alpha-b1", ("Validated", "Invalid", "Failed"))
    assert status["phase"] == "Validated", status
    assert status["keys"] == len(before) and status["keysByPrefix"]["aws_masker:map:"] == 100_000
    assert status["sizeBytes"] > 0 and status["location"].startswith("docker-host://")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Completed"] == conditions["Validated"] == "True"
    wait_until(lambda: {"SnapshotTaken", "ValidationPassed"} <= set(env.events("alpha-b1")),
               timeout=30, what="backup Events")  # fmt: skip
    assert PASSWORD.encode() not in b"".join(
        p.read_bytes()
        for p in env.files("alpha", "alpha-b1").rglob("*")
        if p.is_file() and p.suffix != ".rdb"
    )

    # A day of traffic: keys deleted, changed, added.
    keys = sorted(client.scan_iter(match="aws_masker:map:*", count=5000))[:3000]
    client.delete(*keys[:1000])
    for k in keys[1000:]:
        client.set(k, "changed", ex=60)
    fill_mappings(client, 2000, seed="later")
    assert snapshot_keys(client) != before

    env.restore("alpha-r1", "alpha", "alpha-b1")
    status = env.wait_phase("alpha-r1", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Restored", status
    assert status["restore"]["restoredKeys"] == len(before)
    env.wait_ready("alpha", timeout=120)
    assert snapshot_keys(env.redis("alpha")) == before
    with httpx.Client(timeout=30) as http:
        assert env.request("alpha", http, "instance i-0123456789abcdef0").status_code == 200

    env.create_stack("beta")
    env.wait_ready("beta")
    env.restore("beta-r1", "beta", "alpha-b1")
    status = env.wait_phase("beta-r1", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Restored", status
    env.wait_ready("beta", timeout=120)
    assert snapshot_keys(env.redis("beta")) == before


def test_no_request_fails_while_a_backup_is_taken(env: Env) -> None:
    env.create_stack("gamma")
    env.wait_ready("gamma")
    fill_mappings(env.redis("gamma"), 50_000)
    results: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30) as http:
            n = 0
            while not stop.is_set():
                n += 1
                text = f"check i-{n:017x} and bucket arn:aws:s3:::logs-{n}"
                try:
                    results.append(env.request("gamma", http, text).status_code)
                except httpx.HTTPError:
                    results.append(0)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        wait_until(lambda: len(results) >= 5, timeout=60, what="traffic to flow")
        env.backup("gamma-b1", "gamma", signingSecretRef={"name": "signing"})
        status = env.wait_phase("gamma-b1", ("Validated", "Invalid", "Failed"))
    finally:
        stop.set()
        thread.join()
    assert status["phase"] == "Validated", status
    assert status["validation"]["message"].endswith("signature verified")
    manifest = json.loads((env.files("gamma", "gamma-b1") / "manifest.json").read_text())
    assert manifest["signature"]["algorithm"] == "HMAC-SHA256"
    assert status["keys"] >= 100_000  # plus the mappings the traffic created meanwhile
    print(f"{len(results)} requests during the backup, statuses {sorted(set(results))}")
    assert len(results) > 10 and set(results) == {200}


def _tamper_truncate(root: Path) -> None:
    rdb = root / "redis/dump.rdb"
    rdb.write_bytes(rdb.read_bytes()[:-64])


def _tamper_corrupt(root: Path) -> None:
    rdb = root / "redis/dump.rdb"
    data = bytearray(rdb.read_bytes())
    data[len(data) // 2] ^= 0x55
    rdb.write_bytes(bytes(data))


def _tamper_with_matching_checksums(root: Path) -> None:
    """A tamperer who also rewrites the manifest's checksums: Redis's own load must catch it."""
    _tamper_corrupt(root)
    manifest = json.loads((root / "manifest.json").read_text())
    data = (root / "redis/dump.rdb").read_bytes()
    for f in manifest["files"]:
        if f["path"] == "redis/dump.rdb":
            f["sha256"] = hashlib.sha256(data).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_tamper_truncate, "truncated"),
        (_tamper_corrupt, "ChecksumMismatch"),
        (_tamper_with_matching_checksums, "RdbUnloadable"),
    ],
)
def test_damaged_backup_is_refused_and_the_stack_is_untouched(
    env: Env, tamper: Callable[[Path], None], reason: str
) -> None:
    if "delta" not in env.stacks:
        env.create_stack("delta")
        env.wait_ready("delta")
        fill_mappings(env.redis("delta"), 5_000)
    name = f"delta-{tamper.__name__.strip('_').replace('_', '-')}"
    env.backup(name, "delta")
    assert env.wait_phase(name, ("Validated", "Invalid", "Failed"))["phase"] == "Validated"
    tamper(env.files("delta", name))
    # Asked to validate again (annotation), the backup reports itself Invalid with the reason.
    env.kubectl("annotate", "stackbackup", name, "-n", env.namespace,
                f"backup.kongmasker.io/validate-requested-at={name}-1")  # fmt: skip
    checked = wait_until(
        lambda: (s := env.status(name)).get("validation", {}).get("requestedAt") == f"{name}-1"
        and s.get("phase") in ("Validated", "Invalid") and s,
        timeout=120, what="re-validation",
    )  # fmt: skip
    assert checked["phase"] == "Invalid", checked
    assert reason in checked["failureReason"] or reason == checked["validation"]["reason"]
    env.redis("delta").set("aws_masker:map:AFTER_BACKUP", "kept", ex=3600)
    before, containers = snapshot_keys(env.redis("delta")), env.containers("delta")

    env.restore(f"{name}-r", "delta", name)
    status = env.wait_phase(f"{name}-r", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Invalid", status
    assert reason in status["failureReason"] or reason in json.dumps(status["conditions"])
    source = env.status(name)
    assert source["phase"] == "Invalid" and source["validation"]["valid"] is False
    assert env.containers("delta") == containers  # nothing was stopped or recreated
    assert snapshot_keys(env.redis("delta")) == before


def test_schedule_fires_and_retention_keeps_the_newest_valid_backup(env: Env) -> None:
    env.create_stack("eps")
    env.wait_ready("eps")
    fill_mappings(env.redis("eps"), 1_000)
    schedule = {
        "stackRef": {"name": "eps"},
        "type": "Schedule",
        "schedule": {"cron": "* * * * * */10", "retention": {"keepLast": 1}},
        "storage": {"directory": {"path": str(env.backups)}},
    }
    env.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "StackBackup",
               "metadata": {"name": "eps-every10s"}, "spec": schedule})  # fmt: skip

    def validated_children() -> list[str]:
        status = env.status("eps-every10s")
        return [status["lastSuccessfulBackup"]] if status.get("lastSuccessfulBackup") else []

    first = wait_until(validated_children, timeout=120, what="a scheduled backup to validate")[0]
    assert first.startswith("eps-every10s-")
    # Later backups fail: the storage becomes unwritable for new backups.
    schedule["storage"] = {"directory": {"path": "/proc/kongmasker-unwritable"}}
    env.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "StackBackup",
               "metadata": {"name": "eps-every10s"}, "spec": schedule})  # fmt: skip

    seen_failed: set[str] = set()

    def two_failures_after_the_valid_one() -> str | None:
        valid = env.status("eps-every10s").get("lastSuccessfulBackup") or ""
        phases = env.kubectl(
            "get", "stackbackups", "-n", env.namespace, "-l", "kongmasker.io/schedule=eps-every10s",
            "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
        ).stdout.split()  # fmt: skip
        # Names end in a UTC timestamp: later names sort after earlier ones. Retention
        # deletes older failures, so failures are remembered across polls.
        seen_failed.update(n.split("=")[0] for n in phases if n.endswith("=Failed"))
        newer = [n for n in seen_failed if n > valid]
        return valid if valid and len(newer) >= 2 else None

    valid = wait_until(two_failures_after_the_valid_one, timeout=150, what="two failed backups")
    status = env.status("eps-every10s")
    assert status["lastSuccessfulBackup"] == valid
    assert valid in status["backups"], status
    assert env.status(valid)["phase"] == "Validated"
    assert (env.files("eps", valid) / "manifest.json").exists()
    # keepLast 1: apart from the protected valid one, only the newest backup remains.
    assert len(status["backups"]) <= 2, status["backups"]
    deleted = [n for n in os.listdir(env.files("eps", valid).parent) if n != valid]
    assert not deleted, f"retention left files of deleted backups: {deleted}"
    env.kubectl("delete", "stackbackup", "eps-every10s", "-n", env.namespace)
    # Deleting the schedule applied its retention one last time (issue 11): what it keeps is
    # detached, so garbage collection does not take the object and leave its files behind.
    meta = env.get("stackbackup", valid)["metadata"]
    assert not meta.get("ownerReferences") and "kongmasker.io/schedule" not in meta.get(
        "labels", {}
    ), meta
    assert (env.files("eps", valid) / "manifest.json").exists()
    left = set(os.listdir(env.files("eps", valid).parent))
    named = set(env.kubectl("get", "stackbackups", "-n", env.namespace, "-o",
                            "jsonpath={.items[*].metadata.name}").stdout.split())  # fmt: skip
    assert left <= named, f"files no StackBackup names: {left - named}"


def test_backup_and_restore_through_s3_with_credentials_from_a_secret(
    env: Env, tmp_path: Path
) -> None:
    """storage.s3 with a real MinIO on 127.0.0.1; the operator reads the credentials from a
    Kubernetes Secret (MinIO verifies the signatures)."""
    from tests.integration.backup.minio import ACCESS, SECRET, minio

    with minio(tmp_path / "minio") as s3:
        bucket = f"kmb-{uuid.uuid4().hex[:10]}"
        s3.make_bucket(bucket)
        env.kubectl("create", "secret", "generic", "s3creds", "-n", env.namespace,
                    f"--from-literal=AWS_ACCESS_KEY_ID={ACCESS}",
                    f"--from-literal=AWS_SECRET_ACCESS_KEY={SECRET}")  # fmt: skip
        env.create_stack("zeta")
        env.wait_ready("zeta")
        fill_mappings(env.redis("zeta"), 5_000)
        before = snapshot_keys(env.redis("zeta"))
        storage = {"s3": {"bucket": bucket, "endpoint": s3.endpoint, "prefix": "e2e",
                          "credentialsSecretRef": {"name": "s3creds"}}}  # fmt: skip
        env.backup("zeta-s3", "zeta", storage=storage)
        status = env.wait_phase("zeta-s3", ("Validated", "Invalid", "Failed"))
        assert status["phase"] == "Validated", status
        where = f"e2e/{env.namespace}/zeta/zeta-s3"
        assert status["location"] == f"s3://{bucket}/{where}"
        assert s3.store(bucket).get(f"{where}/manifest.json").startswith(b"{")
        env.redis("zeta").flushall()
        env.restore("zeta-s3-r", "zeta", "zeta-s3")
        status = env.wait_phase("zeta-s3-r", ("Restored", "Failed", "Invalid"))
        assert status["phase"] == "Restored", status
        env.wait_ready("zeta", timeout=120)
        assert snapshot_keys(env.redis("zeta")) == before


def _ready_stack(env: Env, name: str) -> None:
    if name not in env.stacks:
        env.create_stack(name)
    env.wait_ready(name)


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_an_older_backup_replayed_under_a_newer_name_is_refused(env: Env, signed: bool) -> None:
    """Issue 11: the manifest binds the backup's identity; copying an older backup's files
    under a newer backup's name must not restore the old data as the new backup."""
    import shutil

    _ready_stack(env, "replay")
    r = env.redis("replay")
    tag = "s" if signed else "u"
    extra: dict[str, Any] = {"signingSecretRef": {"name": "signing"}} if signed else {}
    old, new = f"replay-{tag}-old", f"replay-{tag}-new"
    r.set("replay:state", "old")
    env.backup(old, "replay", **extra)
    assert env.wait_phase(old, ("Validated", "Invalid", "Failed"))["phase"] == "Validated"
    r.set("replay:state", "new")
    env.backup(new, "replay", **extra)
    assert env.wait_phase(new, ("Validated", "Invalid", "Failed"))["phase"] == "Validated"

    # The attack: the older backup's files (a genuine signature included) in the newer one's place.
    shutil.rmtree(env.files("replay", new))
    shutil.copytree(env.files("replay", old), env.files("replay", new))
    env.restore(f"replay-{tag}-r", "replay", new)
    status = env.wait_phase(f"replay-{tag}-r", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Invalid", status
    assert "IdentityMismatch" in status["failureReason"] or "IdentityMismatch" in json.dumps(
        status["conditions"]
    ), status
    assert old in status["failureReason"]
    assert env.status(new)["phase"] == "Invalid"
    assert env.status(new)["validation"]["reason"] == "IdentityMismatch"
    assert r.get("replay:state") == b"new", "nothing was restored"


def test_directory_outside_the_roots_is_refused_and_nothing_is_written(env: Env) -> None:
    _ready_stack(env, "replay")
    tag = uuid.uuid4().hex[:6]
    outside = Path(f"/tmp/km-outside-{tag}")
    escape = env.backups.parent / f"km-escape-{tag}"
    for name, path in (
        (f"out-{tag}", str(outside)),
        (f"dotdot-{tag}", f"{env.backups}/../km-escape-{tag}"),
    ):
        env.backup(name, "replay", storage={"directory": {"path": path}})
        status = env.wait_phase(name, ("Validated", "Completed", "Invalid", "Failed"))
        assert status["phase"] == "Failed", status
        reasons = {c["reason"] for c in status["conditions"]}
        assert "DirectoryNotAllowed" in reasons, status
        assert "spec.storage.directory.path" in status["failureReason"]
    assert not outside.exists() and not escape.exists(), "nothing may appear on the host"


def test_a_schedule_below_the_minimum_interval_is_refused(env: Env) -> None:
    name = f"often-{uuid.uuid4().hex[:6]}"
    env.apply({"apiVersion": "kongmasker.io/v1alpha1", "kind": "StackBackup",
               "metadata": {"name": name},
               "spec": {"stackRef": {"name": "replay"}, "type": "Schedule",
                        "schedule": {"cron": "* * * * * */2"},
                        "storage": {"directory": {"path": str(env.backups)}}}})  # fmt: skip
    status = env.wait_phase(name, ("Failed", "Scheduled"), timeout=60)
    assert status["phase"] == "Failed", status
    assert "spec.schedule.cron" in status["failureReason"]
    assert "ScheduleTooFrequent" in json.dumps(status["conditions"])
    children = env.kubectl("get", "stackbackups", "-n", env.namespace, "-l",
                           f"kongmasker.io/schedule={name}", "-o", "name").stdout  # fmt: skip
    assert children.strip() == ""
    # A deleted schedule goes (its finalizer is released by the operator).
    env.kubectl("delete", "stackbackup", name, "-n", env.namespace, "--timeout=60s")
