"""Resource sampling (kongmasker.core.resources) of real containers on the real dockerd,
through the operator's Docker runtime adapter, in the sampler's worker thread."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from prometheus_client import REGISTRY
from tests.support import wait_until

from kongmasker import metrics
from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerStats
from kongmasker.api.vocabulary import (
    LABEL_COMPONENT,
    LABEL_OPERATOR,
    LABEL_PART_OF,
    PART_OF,
    Component,
)
from kongmasker.config import DEFAULT_OPERATOR_ID
from kongmasker.core.resources import ResourceSampler, StackUsage, usage

pytestmark = pytest.mark.integration

NS = "obs-res"
MIB = 1024 * 1024


@pytest.fixture
def stack(docker_host: str, images: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Three containers of one fake stack: a CPU-bound "kong" limited to half a core, an idle
    "redis" with a 256 MiB memory limit (both host network), and an idle "nginx" on a
    user-defined bridge network (so it has its own network counters)."""
    client = docker.DockerClient(base_url=docker_host)
    uid = uuid.uuid4().hex[:8]
    # The operator's runtime lists only containers stamped with its identity (issue 11).
    selector = {
        LABEL_PART_OF: PART_OF,
        LABEL_OPERATOR: DEFAULT_OPERATOR_ID,
        "kongmasker.io/test": f"resources-{uid}",
    }
    network = client.networks.create(f"km-obs-res-{uid}", driver="bridge", labels=selector)
    started: list[Any] = []

    def run(component: Component, command: str, **kw: Any) -> Any:
        container = client.containers.run(
            images["redis"],
            entrypoint=["sh", "-c", command],
            detach=True,
            name=f"km-obs-res-{uid}-{component}",
            labels={**selector, LABEL_COMPONENT: str(component)},
            **kw,
        )
        started.append(container)
        return container

    try:
        run(Component.KONG, "while :; do :; done", network_mode="host", nano_cpus=500_000_000)
        run(Component.REDIS, "sleep 600", network_mode="host", mem_limit="256m")
        nginx = run(Component.NGINX, "sleep 600", network=network.name)
        yield {"selector": selector, "nginx": nginx, "uid": uid}
    finally:
        for c in started:
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
        network.remove()
        client.close()
        metrics.forget_observability(NS, uid)


def test_sampler_measures_real_containers_in_its_worker_thread(
    stack: dict[str, Any], docker_host: str
) -> None:
    runtime = DockerRuntime.connect(docker_host)
    rounds: list[StackUsage] = []
    sampler = ResourceSampler(interval=0.5, on_round=rounds.append)
    name = stack["uid"]
    sampler.watch(NS, name, runtime, stack["selector"], {Component.KONG: 500_000_000})
    try:
        sampler.start()
        result = wait_until(
            lambda: (r := sampler.latest(NS, name)) and len(r.containers) == 3 and r,
            timeout=60,
            what="a sampling round over the three containers",
        )
        assert rounds, "rounds run in the sampler's thread and are reported"
        kong = result.containers[Component.KONG]
        redis = result.containers[Component.REDIS]
        nginx = result.containers[Component.NGINX]
        # A busy loop under a 0.5-core limit uses a visible part of its allowance.
        assert kong.cpu_ratio > 0.2 and kong.cpu_cores <= 0.75
        assert redis.cpu_ratio < 0.2
        assert redis.memory_limit_bytes == 256 * MIB
        assert 0 < redis.memory_bytes < 256 * MIB
        # Host networking has no per-container counters: left out, not reported as zero.
        assert kong.network_rx_bytes is None and redis.network_tx_bytes is None
        assert nginx.network_rx_bytes is not None and nginx.network_tx_bytes is not None
        assert result.free_disk_bytes is not None and result.free_disk_bytes > 0
        assert not result.errors

        def value(metric: str, **labels: str) -> float | None:
            return REGISTRY.get_sample_value(metric, {"namespace": NS, "name": name, **labels})

        assert value("kongmasker_container_memory_limit_bytes", component="redis") == 256 * MIB
        assert value("kongmasker_container_cpu_usage_ratio", component="kong") is not None
        assert value("kongmasker_docker_host_free_disk_bytes") == pytest.approx(
            result.free_disk_bytes, rel=0.1
        )
        assert (
            value("kongmasker_container_network_receive_bytes_total", component="nginx") is not None
        )
        assert value("kongmasker_container_network_receive_bytes_total", component="kong") is None

        # A stopped container is no longer sampled.
        stack["nginx"].stop(timeout=1)
        wait_until(
            lambda: Component.NGINX not in (sampler.latest(NS, name) or result).containers,
            timeout=60,
            what="a round without the stopped container",
        )
        sampler.unwatch(NS, name)
        assert sampler.latest(NS, name) is None
    finally:
        sampler.stop()
        runtime.close()


def test_usage_conversion_uses_the_limit_else_the_host_cpus() -> None:
    stats = ContainerStats(
        cpu_percent=50.0,
        memory_bytes=300,
        memory_limit_bytes=1000,
        network_rx_bytes=0,
        network_tx_bytes=0,
        memory_cache_bytes=100,
        online_cpus=2,
        network_reported=False,
    )
    limited = usage(Component.KONG, stats, 500_000_000)
    assert (limited.cpu_cores, limited.cpu_ratio) == (0.5, 1.0)
    assert usage(Component.KONG, stats, None).cpu_ratio == 0.25
    assert limited.memory_bytes == 200
    assert limited.block_read_bytes is None and limited.network_rx_bytes is None
