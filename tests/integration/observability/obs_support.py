"""A hand-wired stack for the observability tests and benchmarks: the Redis, gateway and
Nginx images (plus the mock upstream) started on free 127.0.0.1 ports from the operator's own
renderers and Docker adapter, without the reconcile loop. Every container carries
`app.kubernetes.io/part-of=kongmasker` and is removed on exit; the Redis volume too.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from tests.support import free_port, wait_until

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.probes import NetProbes
from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import LABEL_PART_OF, PART_OF, Component
from kongmasker.core import canary, health
from kongmasker.core.render import Desired, StackRef, render_stack

LABELS = {LABEL_PART_OF: PART_OF, "kongmasker.io/test": "observability"}


@dataclass
class Stack:
    runtime: DockerRuntime
    spec: StackSpec
    ref: StackRef
    desired: dict[Component, Desired]
    ids: dict[str, str]
    secrets: dict[str, str]
    mock_url: str

    @property
    def target(self) -> canary.CanaryTarget:
        return canary.CanaryTarget.from_spec(self.spec)

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.spec.kong.admin_port}"

    def history(self) -> list[object]:
        return list(httpx.get(f"{self.mock_url}/__requests", timeout=5).json())

    def wait_healthy(self, comp: Component) -> None:
        answer = health.wait_healthy(
            comp, self.spec, NetProbes(), self.secrets, timeout=60, interval=0.3
        )
        assert answer.ok, f"{comp}: {answer.message}"


@contextlib.contextmanager
def hand_wired_stack(
    docker_host: str, images: dict[str, str], namespace: str, *, with_backend: bool = False
) -> Iterator[Stack]:
    """Mock upstream, then Redis -> Kong -> Nginx (-> Backend), each healthy before the next.
    The backend requires `X-API-Key: <stack.secrets["BACKEND_API_KEY"]>`."""
    runtime = DockerRuntime.connect(docker_host)
    uid = uuid.uuid4().hex[:8]
    ids: dict[str, str] = {}
    mock_port = free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    spec = StackSpec.from_dict(
        {
            "upstream": {"url": mock_url},
            "redis": {
                "image": images["redis"],
                "port": free_port(),
                "passwordSecretRef": {"name": "redis"},
            },
            "kong": {
                "image": images["gateway"],
                "proxyPort": free_port(),
                "adminPort": free_port(),
                "statusPort": free_port(),
            },
            "nginx": {"image": images["nginx"], "port": free_port()},
            "backend": {"image": images["backend"], "port": free_port()},
        }
    )
    ref = StackRef(namespace, f"canary-{uid}", uid)
    secrets = {
        "REDIS_PASSWORD": "obs-" + uuid.uuid4().hex,
        "BACKEND_API_KEY": "obs-key-" + uuid.uuid4().hex,
    }
    desired = render_stack(ref, spec, secrets, grace_seconds=5)
    box = Stack(runtime, spec, ref, desired, ids, secrets, mock_url)
    try:
        mock = runtime.create_container(
            ContainerSpec(
                name=f"km-obs-mock-{uid}",
                image=images["mockupstream"],
                env={"MOCK_LISTEN": f"127.0.0.1:{mock_port}", "MOCK_HISTORY": "200"},
                labels=LABELS,
            )
        )
        ids["mock"] = mock.id
        runtime.start_container(mock.id)
        wait_until(
            lambda: httpx.get(f"{mock_url}/health", timeout=2).status_code == 200,
            timeout=30,
            what="mock upstream",
        )
        runtime.ensure_volume(ref.redis_volume(spec), LABELS)
        order = [Component.REDIS, Component.KONG, Component.NGINX]
        for comp in order + ([Component.BACKEND] if with_backend else []):
            info = runtime.create_container(desired[comp].container)
            ids[str(comp)] = info.id
            runtime.start_container(info.id)
            box.wait_healthy(comp)
        yield box
    finally:
        for cid in ids.values():
            runtime.remove_container(cid, force=True)
        runtime.remove_volume(ref.redis_volume(spec))
        runtime.close()
