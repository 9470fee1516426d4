"""Directory backups are written on the Docker host, not where the operator runs.

The operator runs here as it would in a cluster: a container of its own image
(kongmasker/operator:dev, built from this checkout), with host networking (to reach the
API server and the stack's ports on 127.0.0.1), the Docker socket and a kubeconfig mounted,
but *not* the backup directory, scoped to the test's namespace. A StackBackup with
`storage.directory` must put its files in that directory of the Docker host (the stack's
engine), the directory must not exist in the operator's filesystem, and a Restore must read
them back from there. The real kube-apiserver and dockerd; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator

import docker
import httpx
import pytest
from tests.e2e.test_backup import PASSWORD, Env
from tests.integration.backup.mappings import fill_mappings, snapshot_keys
from tests.support import REPO_ROOT, free_port, wait_until

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.api import naming

pytestmark = pytest.mark.e2e

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
IMAGES = ("operator", "redis", "gateway", "nginx", "backend", "mockupstream")
PART_OF = "app.kubernetes.io/part-of"


@pytest.fixture(scope="module")
def host_env(
    kubectl: Kubectl, kubeconfig: str, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Env, docker.models.containers.Container]]:
    subprocess.run(["bash", str(REPO_ROOT / "hack/build-images.sh"), *IMAGES], check=True)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for crd in ("kongmaskerstacks.kongmasker.io", "stackbackups.kongmasker.io"):
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    namespace = f"kmh-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    for name, key, value in (("redis", "password", PASSWORD), ("up", "api-key", "sk-test")):
        kubectl(
            "create", "secret", "generic", name, "-n", namespace, f"--from-literal={key}={value}"
        )
    tmp = tmp_path_factory.mktemp("hoststore")
    # A self-contained kubeconfig (certificates inline) readable by the image's user.
    flat = tmp / "kubeconfig"
    flat.write_text(kubectl("config", "view", "--flatten", "--minify", "--raw").stdout)
    os.chmod(flat, 0o644)
    runtime = DockerRuntime.connect(docker_host)
    client = docker.DockerClient(base_url=docker_host)
    labels = {PART_OF: "kongmasker", "kongmasker.io/test": namespace}
    mock_port = free_port()
    mock = runtime.create_container(
        ContainerSpec(
            name=f"kmh-mock-{namespace}",
            image="kongmasker/mockupstream:dev",
            env={"MOCK_LISTEN": f"127.0.0.1:{mock_port}"},
            labels=labels,
        )
    )
    runtime.start_container(mock.id)
    socket_path = docker_host.removeprefix("unix://")
    operator = client.containers.run(
        "kongmasker/operator:dev",
        command=["--namespace", namespace],
        name=f"kmh-operator-{namespace}",
        labels=labels,
        environment={
            "KUBECONFIG": "/etc/kongmasker/kubeconfig",
            "DOCKER_HOST": "unix:///var/run/docker.sock",
            "KONGMASKER_HEALTH_GATE_TIMEOUT": "120",
            "KONGMASKER_MONITOR_CANARY_INTERVAL": "0",  # the test compares Redis key by key
            "KONGMASKER_BACKUP_DIRECTORY_ROOTS": str(tmp / "backups"),  # the operator's limit
        },
        volumes={
            str(flat): {"bind": "/etc/kongmasker/kubeconfig", "mode": "ro"},
            socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        group_add=[str(os.stat(socket_path).st_gid)],  # the image runs as 65532
        network_mode="host",
        detach=True,
    )
    backups = tmp / "backups"  # on this machine, which is the Docker host; not mounted above
    env = Env(kubectl, runtime, namespace, backups, f"http://127.0.0.1:{mock_port}")
    try:
        wait_until(lambda: httpx.get(f"{env.mock_url}/health").status_code == 200,
                   timeout=60, what="mock upstream")  # fmt: skip

        def operator_up() -> bool:
            operator.reload()
            log = operator.logs().decode(errors="replace")
            assert operator.status == "running", f"operator container exited:\n{log[-3000:]}"
            return "Initial authentication has finished" in log

        wait_until(operator_up, timeout=60, what="the operator container to log in")
        yield env, operator
    finally:
        for stack in list(env.stacks):
            kubectl("delete", "kongmaskerstack", stack, "-n", namespace, "--timeout=120s",
                    check=False)  # fmt: skip
        kubectl("delete", "stackbackups", "--all", "-n", namespace, "--wait=false", check=False)
        operator.reload()
        log = operator.logs(tail=80).decode(errors="replace")
        operator.remove(force=True)
        flat.unlink()
        runtime.remove_container(mock.id, force=True)
        for info in runtime.list_containers({"kongmasker.io/stack-namespace": namespace}):
            runtime.remove_container(info.id, force=True)
        for stack in env.stacks:
            runtime.remove_volume(naming.redis_volume(namespace, stack))
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        runtime.close()
        client.close()
        print(f"operator container log (tail):\n{log}")


def store_helpers(runtime: DockerRuntime) -> set[str]:
    return {c.id for c in runtime.list_containers({"kongmasker.io/scratch": "store"})}


def test_backup_lands_on_the_docker_host_and_restores_from_there(
    host_env: tuple[Env, docker.models.containers.Container],
) -> None:
    env, operator = host_env
    helpers_before = store_helpers(env.runtime)
    env.create_stack("omega")
    env.wait_ready("omega")
    client = env.redis("omega")
    fill_mappings(client, 5_000)
    before = snapshot_keys(client)

    env.backup("omega-b1", "omega")
    status = env.wait_phase("omega-b1", ("Validated", "Invalid", "Failed"))
    assert status["phase"] == "Validated", status
    where = f"{env.namespace}/omega/omega-b1"
    assert status["location"] == f"docker-host://localhost{env.backups}/{where}"

    # The files are in the Docker host's directory, private to root.
    files = env.files("omega", "omega-b1")
    manifest = json.loads((files / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} >= {"redis/dump.rdb"}
    for path in [env.backups, *env.backups.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert PASSWORD.encode() not in (files / "manifest.json").read_bytes()

    # ...and nowhere in the operator's own filesystem.
    seen = operator.exec_run(["test", "-e", str(env.backups)])
    assert seen.exit_code == 1, "the backup directory exists inside the operator container"
    mounts = [m["Destination"] for m in operator.attrs["Mounts"]]
    assert not any(str(env.backups).startswith(m) for m in mounts), mounts

    # The helper container is removed once the backup is done.
    wait_until(lambda: store_helpers(env.runtime) <= helpers_before, timeout=30,
               what="the store helper to be removed")  # fmt: skip

    client.flushall()
    env.restore("omega-r1", "omega", "omega-b1")
    status = env.wait_phase("omega-r1", ("Restored", "Failed", "Invalid"))
    assert status["phase"] == "Restored", status
    assert status["location"] == f"docker-host://localhost{env.backups}/{where}"
    env.wait_ready("omega", timeout=120)
    assert snapshot_keys(env.redis("omega")) == before
    wait_until(lambda: store_helpers(env.runtime) <= helpers_before, timeout=30,
               what="the store helper to be removed")  # fmt: skip
