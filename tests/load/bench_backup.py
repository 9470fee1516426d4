"""Benchmark of StackBackup on real containers; prints figures, asserts nothing about speed.

    DOCKER_HOST=$(cat .local/docker-host) .venv/bin/python tests/load/bench_backup.py
    ... bench_backup.py --keys 100000 1000000 --runs 1

For each size: a stack's Redis (the operator's own container spec: password, AOF on, named
volume) is filled with masking mappings in the plugin's key schema (~2 keys per mapping, with
TTLs) and these are timed, each on the same data:

- floor:    `redis-cli --rdb` inside the container (a fresh RDB over the replication
            protocol) plus copying that file out of the container and onto disk: the least
            any RDB backup can cost;
- backup:   BackupJob.run (BGSAVE + LASTSAVE wait + copy out + count in a throwaway Redis +
            store files and manifest in a directory store: with --store host (the default,
            what the operator uses) on the Docker host through a helper container, with
            --store local a directory of this process);
- validate: validate_backup (read + sha256 every file + throwaway Redis load + counts);
- restore:  RestoreJob.run (validate again, stop, swap the data on the volume, AOF rebuild by
            a throwaway Redis, start, gate, verify counts; no dependents here).

MB/s is the RDB's size over the time. Figures go to docs/backup.md with the command.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

import redis  # noqa: E402
from tests.integration.backup.mappings import fill_mappings  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

from kongmasker.adapters.docker import DockerRuntime  # noqa: E402
from kongmasker.adapters.hoststore import DockerHostDirectoryStore  # noqa: E402
from kongmasker.adapters.probes import NetProbes  # noqa: E402
from kongmasker.adapters.storage import BackupStore, DirectoryStore  # noqa: E402
from kongmasker.api.spec import StackSpec  # noqa: E402
from kongmasker.api.vocabulary import Component  # noqa: E402
from kongmasker.config import Settings  # noqa: E402
from kongmasker.core.backup.create import BackupJob, StackTarget  # noqa: E402
from kongmasker.core.backup.manifest import Identity  # noqa: E402
from kongmasker.core.backup.rediscli import labels as scratch_labels  # noqa: E402
from kongmasker.core.backup.restore import RestoreJob  # noqa: E402
from kongmasker.core.backup.validate import validate_backup  # noqa: E402
from kongmasker.core.render import StackRef, render_stack  # noqa: E402

PASSWORD = "bench-backup-pw"


def start_redis(runtime: DockerRuntime) -> tuple[StackTarget, redis.Redis]:
    port = free_port()
    spec = StackSpec.from_dict(
        {
            "upstream": {"url": "http://127.0.0.1:9"},
            "redis": {"port": port, "passwordSecretRef": {"name": "r"}},
        }
    )
    ref = StackRef(f"bench-{uuid.uuid4().hex[:6]}", "demo", str(uuid.uuid4()))
    target = StackTarget(ref, spec, 1)
    container = render_stack(ref, spec, {"REDIS_PASSWORD": PASSWORD}, 20)[Component.REDIS]
    runtime.ensure_volume(target.volume, ref.name_labels())
    runtime.start_container(runtime.create_container(container.container).id)
    client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=120)
    wait_until(client.ping, timeout=30, what="Redis")
    return target, client


def floor(runtime: DockerRuntime, target: StackTarget, out: Path) -> float:
    started = time.monotonic()
    script = 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" --rdb /tmp/floor.rdb'
    result = runtime.exec(target.redis_container, ["sh", "-c", script])
    assert result.exit_code == 0, result.output
    data = runtime.read_file(target.redis_container, "/tmp/floor.rdb") or b""
    out.write_bytes(data)
    return time.monotonic() - started


def mbps(size: int, seconds: float) -> str:
    return f"{size / 1e6 / seconds:7.1f} MB/s" if seconds > 0 else "-"


def make_store(runtime: DockerRuntime, kind: str, root: str, image: str) -> BackupStore:
    if kind == "local":
        return DirectoryStore(root)
    return DockerHostDirectoryStore(runtime, root, image, labels=scratch_labels("store"))


def bench(runtime: DockerRuntime, keys: int, runs: int, kind: str) -> None:
    target, client = start_redis(runtime)
    try:
        t = time.monotonic()
        fill_mappings(client, keys // 2)
        total = client.dbsize()
        print(f"\n== {total} keys (filled in {time.monotonic() - t:.1f}s)")
        with tempfile.TemporaryDirectory() as tmp:
            image = runtime.get_container(target.redis_container).image  # type: ignore[union-attr]
            store = make_store(runtime, kind, f"{tmp}/store", image)
            try:
                for run in range(runs):
                    seconds = floor(runtime, target, Path(tmp) / "floor.rdb")
                    size = (Path(tmp) / "floor.rdb").stat().st_size
                    where = f"bench/demo/b{run}"
                    t = time.monotonic()
                    manifest = BackupJob(
                        runtime, store, target, Identity("bench", f"b{run}"), where, {}, [PASSWORD]
                    ).run()
                    backup_s = time.monotonic() - t
                    rdb = manifest.file("redis/dump.rdb")
                    assert rdb is not None and manifest.redis.keys == total
                    t = time.monotonic()
                    verdict = validate_backup(runtime, store, where)
                    validate_s = time.monotonic() - t
                    assert verdict.valid, verdict.message
                    t = time.monotonic()
                    RestoreJob(
                        runtime, store, where, target, NetProbes(5.0),
                        {"REDIS_PASSWORD": PASSWORD}, Settings(),
                    ).run()  # fmt: skip
                    restore_s = time.monotonic() - t
                    assert client.dbsize() == total
                    print(
                        f"RDB {rdb.size / 1e6:.1f} MB (floor's {size / 1e6:.1f} MB), run {run + 1}:"
                    )
                    rows = [
                        ("floor (redis-cli --rdb + copy)", seconds, size),
                        ("backup", backup_s, rdb.size),
                        ("validate", validate_s, rdb.size),
                        ("restore (validate included)", restore_s, rdb.size),
                    ]
                    for label, secs, nbytes in rows:
                        print(f"  {label:<31} {secs:6.2f}s {mbps(nbytes, secs)}")
            finally:
                store.close()
    finally:
        client.close()
        runtime.remove_container(target.redis_container, force=True)
        runtime.remove_volume(target.volume)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--store", choices=("host", "local"), default="host")
    args = parser.parse_args()
    runtime = DockerRuntime.connect(os.environ.get("DOCKER_HOST", ""))
    print(f"store: {args.store}")
    for keys in args.keys:
        bench(runtime, keys, args.runs, args.store)


if __name__ == "__main__":
    main()
