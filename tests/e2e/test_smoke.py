"""Smoke test of the foundation: the real kube-apiserver built by hack/ and the real dockerd.

It proves the environment the other e2e tests stand on: the API server reports the pinned
release, the project's CRDs install and serve custom resources, and dockerd runs the
project's own images.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import docker
import pytest
from tests.support import REPO_ROOT, wait_until

pytestmark = pytest.mark.e2e


def _pinned_k8s_version() -> str:
    text = (REPO_ROOT / "hack" / "lib.sh").read_text()
    match = re.search(r'K8S_VERSION="\$\{K8S_VERSION:-(v[0-9.]+)\}"', text)
    assert match, "K8S_VERSION pin not found in hack/lib.sh"
    return match.group(1)


def test_apiserver_is_the_pinned_build(kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    git_version = version["serverVersion"]["gitVersion"]
    print(f"kube-apiserver gitVersion: {git_version}")
    assert git_version == _pinned_k8s_version()
    assert version["clientVersion"]["gitVersion"] == git_version


def test_crds_install_and_serve_custom_resources(kubectl) -> None:
    crd_files = sorted(Path(REPO_ROOT / "crds").glob("*.yaml"))
    assert crd_files, "crds/ holds no CRD"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    names = kubectl("get", "-f", str(REPO_ROOT / "crds"), "-o", "name").stdout.split()
    for name in names:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", name)

    namespace = f"smoke-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", namespace)
    stack = {
        "apiVersion": "kongmasker.io/v1alpha1",
        "kind": "KongMaskerStack",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {"paused": True},
    }
    kubectl("apply", "-f", "-", input=json.dumps(stack))
    try:
        got = json.loads(
            kubectl("get", "kongmaskerstack", "smoke", "-n", namespace, "-o", "json").stdout
        )
        assert got["spec"]["paused"] is True
        assert got["metadata"]["generation"] == 1
        # Defaults from the structural schema are applied by the API server itself.
        assert len(got["spec"]) > 1, "CRD defaults were not applied"
    finally:
        kubectl("delete", "kongmaskerstack", "smoke", "-n", namespace, "--wait=false")


def test_dockerd_runs_the_projects_images(docker_host: str, images: dict[str, str]) -> None:
    client = docker.DockerClient(base_url=docker_host)
    info = client.version()
    print(f"dockerd {info['Version']} (API {info['ApiVersion']}) at {docker_host}")
    port = 26379
    container = client.containers.run(
        images["redis"],
        detach=True,
        network_mode="host",
        environment={"REDIS_PORT": str(port), "REDIS_PASSWORD": "smoke-pw"},
        labels={"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": "smoke"},
    )
    try:

        def pong() -> bool:
            code, out = container.exec_run(
                ["redis-cli", "-p", str(port), "ping"], environment={"REDISCLI_AUTH": "smoke-pw"}
            )
            return code == 0 and out.strip() == b"PONG"

        wait_until(pong, timeout=30, what="redis PONG through dockerd")
        _, out = container.exec_run(["redis-cli", "-p", str(port), "ping"])
        assert b"NOAUTH" in out, "Redis must require the password"
    finally:
        container.remove(force=True)
