"""Fixtures for the data-plane integration tests (helpers in dp_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from tests.integration.dataplane.dp_support import (
    Containers,
    GatewayProc,
    Mock,
    RedisServer,
    start_gateway,
    start_mock,
    start_redis,
)


@pytest.fixture(scope="session")
def dclient(docker_host: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_host)
    yield client
    client.close()


@pytest.fixture(scope="module")
def containers(dclient: docker.DockerClient, images: dict[str, str]) -> Iterator[Containers]:
    box = Containers(dclient)
    yield box
    box.cleanup()


@pytest.fixture(scope="module")
def redis_server(containers: Containers, images: dict[str, str]) -> RedisServer:
    return start_redis(containers, images)


@pytest.fixture(scope="module")
def mock(containers: Containers, images: dict[str, str]) -> Mock:
    return start_mock(containers, images)


@pytest.fixture(scope="module")
def gateway_factory(containers: Containers, images: dict[str, str]) -> Callable[..., GatewayProc]:
    def make(config: dict[str, Any] | None, **kw: Any) -> GatewayProc:
        return start_gateway(containers, images, config, **kw)

    return make
