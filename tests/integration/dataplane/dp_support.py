"""Helpers for the data-plane integration tests: the real images on the real dockerd.

Every container runs with host networking on 127.0.0.1 ports picked free by the test, carries
`app.kubernetes.io/part-of=kongmasker`, and is removed when its fixture ends. Nothing is mocked
except the AI API itself (api.anthropic.com is unreachable here), which the mockupstream image
stands in for.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx
import redis
from tests.support import free_port, wait_until

LABELS = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/test": "dataplane"}
REDIS_PASSWORD = "dp-test-" + uuid.uuid4().hex[:12]


@dataclass
class Containers:
    """Starts containers for one test module and removes every one of them at the end."""

    client: docker.DockerClient
    started: list[Any] = field(default_factory=list)

    def run(self, image: str, env: dict[str, str], name: str, **kw: Any) -> Any:
        container = self.client.containers.run(
            image,
            detach=True,
            network_mode="host",
            environment=env,
            labels=LABELS,
            name=f"dp-{name}-{uuid.uuid4().hex[:6]}",
            **kw,
        )
        self.started.append(container)
        return container

    def cleanup(self) -> None:
        for c in self.started:
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)


def _answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


@dataclass
class RedisServer:
    container: Any
    port: int
    password: str = REDIS_PASSWORD

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, decode_responses=True)

    def wait(self) -> None:
        wait_until(lambda: self.client().ping(), timeout=30, what="redis PING")


def start_redis(box: Containers, images: dict[str, str]) -> RedisServer:
    port = free_port()
    container = box.run(
        images["redis"],
        {"REDIS_PORT": str(port), "REDIS_PASSWORD": REDIS_PASSWORD, "REDIS_APPENDONLY": "yes"},
        "redis",
    )
    server = RedisServer(container, port)
    server.wait()
    return server


@dataclass
class Mock:
    container: Any
    url: str

    def requests(self) -> list[Any]:
        return httpx.get(f"{self.url}/__requests").json()

    def clear(self) -> None:
        httpx.delete(f"{self.url}/__requests")


def start_mock(box: Containers, images: dict[str, str]) -> Mock:
    port = free_port()
    container = box.run(images["mockupstream"], {"MOCK_LISTEN": f"127.0.0.1:{port}"}, "mock")
    mock = Mock(container, f"http://127.0.0.1:{port}")
    wait_until(lambda: _answers(f"{mock.url}/health"), timeout=30, what="mock upstream")
    return mock


def kong_config(upstream: str, redis_port: int, **plugin: Any) -> dict[str, Any]:
    """The declarative config the operator renders: one service, route /v1, the plugin with
    the password as an env-vault reference."""
    conf = {
        "redis_host": "127.0.0.1",
        "redis_port": redis_port,
        "redis_password": "{vault://env/redis-password}",
        "mapping_ttl": 3600,
        **plugin,
    }
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": "claude-api-service",
                "url": upstream,
                "routes": [{"name": "claude", "paths": ["/v1"], "strip_path": False}],
                "plugins": [{"name": "aws-masker", "config": conf}],
            }
        ],
    }


@dataclass
class GatewayProc:
    container: Any
    proxy: str
    admin: str
    status: str

    def post(
        self, text: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> httpx.Response:
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
        body.update(extra)
        return httpx.post(
            f"{self.proxy}/v1/messages",
            json=body,
            headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01", **(headers or {})},
            timeout=30,
        )

    def metric(self, name: str, labels: str = "") -> float:
        text = httpx.get(f"{self.admin}/metrics").text
        for line in text.splitlines():
            if line.startswith(name + (("{" + labels + "}") if labels else " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def start_gateway(
    box: Containers,
    images: dict[str, str],
    config: dict[str, Any] | None,
    *,
    wait_ready: bool = True,
    ports: tuple[int, int, int] | None = None,
    extra_env: dict[str, str] | None = None,
) -> GatewayProc:
    proxy, admin, status = ports or (free_port(), free_port(), free_port())
    env = {
        "KONG_PROXY_LISTEN": f"127.0.0.1:{proxy}",
        "KONG_ADMIN_LISTEN": f"127.0.0.1:{admin}",
        "KONG_STATUS_LISTEN": f"127.0.0.1:{status}",
        "KONG_GRACE_SECONDS": "10",
        "REDIS_PASSWORD": REDIS_PASSWORD,
        **(extra_env or {}),
    }
    if config is not None:
        env["KONG_DECLARATIVE_CONFIG_STRING"] = json.dumps(config)
    container = box.run(images["gateway"], env, "gateway", stop_signal="SIGTERM")
    gw = GatewayProc(
        container,
        f"http://127.0.0.1:{proxy}",
        f"http://127.0.0.1:{admin}",
        f"http://127.0.0.1:{status}",
    )
    probe = "/status/ready" if wait_ready else "/status"
    wait_until(lambda: _answers(gw.status + probe), timeout=30, what="gateway status")
    return gw
