"""The gateway and backend in-process over real loopback HTTP, with no Redis behind them.

Redis is deliberately pointed at a closed port: these tests cover what happens without a store
(fail-secure refusal, the non-fail-secure in-memory fallback) and the proxy's HTTP behaviour.
The Redis-backed behaviour is tested against the real images in tests/integration/dataplane.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.support import free_port

from kongmasker.api.kongplugin import PROFILES
from kongmasker_dataplane.backend import Backend, BackendSettings
from kongmasker_dataplane.config import SCHEMA_ENV, ConfigError
from kongmasker_dataplane.gateway import Gateway, GatewaySettings
from kongmasker_dataplane.mockupstream import MockUpstream
from kongmasker_dataplane.serving import Listener, Server

pytestmark = pytest.mark.unit


def config(upstream: str, **plugin: Any) -> dict[str, Any]:
    conf = {"redis_port": free_port(), "redis_timeout": 0.5, **plugin}
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": "ai",
                "url": upstream,
                "routes": [{"name": "ai", "paths": ["/v1"], "strip_path": False}],
                "plugins": [{"name": "aws-masker", "config": conf}],
            }
        ],
    }


class Stack:
    """A mock upstream and a gateway on free loopback ports."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.mock = MockUpstream()
        self.mock_url = f"http://127.0.0.1:{free_port()}"
        ports = {"proxy": free_port(), "admin": free_port(), "status": free_port()}
        self.gw = Gateway(
            GatewaySettings(
                proxy=("127.0.0.1", ports["proxy"]),
                admin=("127.0.0.1", ports["admin"]),
                status=("127.0.0.1", ports["status"]),
                grace=1,
                **({"plugins": ()} if env and env.get("NO_PLUGIN") else {}),
            ),
            environ={},
        )
        self.proxy = f"http://127.0.0.1:{ports['proxy']}"
        self.admin = f"http://127.0.0.1:{ports['admin']}"
        mock_port = int(self.mock_url.rsplit(":", 1)[1])
        self.server = Server(
            [
                Listener(self.mock.app(), "127.0.0.1", mock_port),
                Listener(self.gw.proxy_app(), "127.0.0.1", ports["proxy"], drain_first=True),
                Listener(self.gw.admin_app(), "127.0.0.1", ports["admin"]),
            ],
            grace=1,
            on_drain=self.gw.start_drain,
            on_stopped=self.gw.close,
        )


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = Stack()
    await s.server.start()
    yield s
    await s.server.drain()


async def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=json.dumps(body) if not isinstance(body, bytes) else body, headers=headers
        ) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


MESSAGE = {"messages": [{"role": "user", "content": "restart i-1234567890abcdef0 now"}]}


async def test_fail_secure_refuses_without_store_and_forwards_nothing(stack: Stack) -> None:
    stack.gw.apply(config(stack.mock_url))
    status, body = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 503
    assert "fail-secure" in body["message"]
    assert list(stack.mock.history) == []
    # No identifiers: nothing to store, so it is forwarded.
    status, _ = await post(f"{stack.proxy}/v1/messages", {"messages": [{"content": "hello"}]})
    assert status == 200 and len(stack.mock.history) == 1


async def test_without_fail_secure_masks_with_process_memory(stack: Stack) -> None:
    stack.gw.apply(config(stack.mock_url, fail_secure=False))
    status, body = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 200
    assert stack.mock.history[-1]["body"]["messages"][0]["content"] == "restart AWS_EC2_001 now"
    assert body["content"][0]["text"].endswith("restart i-1234567890abcdef0 now")


async def test_headers_forwarded_hop_by_hop_dropped(stack: Stack) -> None:
    stack.gw.apply(config(stack.mock_url))
    headers = {
        "x-api-key": "sk-abc",
        "anthropic-version": "2023-06-01",
        "Proxy-Authorization": "Basic eA==",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.proxy}/v1/messages", json={"messages": []}, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Via"].startswith("kong/")
        assert "X-Kong-Upstream-Latency" in resp.headers
    seen = stack.mock.history[-1]["headers"]
    assert seen["anthropic-version"] == "2023-06-01"
    assert seen["x-api-key"].startswith("sha256:")  # forwarded (the mock stores a fingerprint)
    assert "proxy-authorization" not in seen
    assert seen["host"] == stack.mock_url.removeprefix("http://")


async def test_no_route_upstream_down_and_too_large(stack: Stack) -> None:
    status, body = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 404 and body["message"] == "no Route matched with those values"
    stack.gw.apply(config(f"http://127.0.0.1:{free_port()}"))
    status, _ = await post(f"{stack.proxy}/v1/messages", {"messages": []})
    assert status == 502
    stack.gw.apply(config(stack.mock_url, max_body_bytes=10))
    status, _ = await post(f"{stack.proxy}/v1/messages", {"messages": ["x" * 20]})
    assert status == 413


async def test_admin_ready_and_drain(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.admin}/status/ready") as resp:
            assert resp.status == 503
        async with session.post(f"{stack.admin}/config", json=config(stack.mock_url)) as resp:
            assert resp.status == 201
        async with session.get(f"{stack.admin}/status/ready") as resp:
            assert resp.status == 200
        stack.gw.start_drain()
        async with session.get(f"{stack.admin}/status/ready") as resp:
            assert resp.status == 503
            assert "draining" in (await resp.json())["message"]


async def test_plugin_not_loaded_is_reported_and_rejected() -> None:
    s = Stack({"NO_PLUGIN": "1"})
    await s.server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{s.admin}/plugins/enabled") as resp:
                assert "aws-masker" not in (await resp.json())["enabled_plugins"]
            async with session.post(f"{s.admin}/config", json=config(s.mock_url)) as resp:
                assert resp.status == 400
    finally:
        await s.server.drain()


async def test_backend_auth_failures_are_counted_and_readiness_explains() -> None:
    port = free_port()
    backend = Backend(
        BackendSettings(
            listen=("127.0.0.1", port),
            admin_url=f"http://127.0.0.1:{free_port()}",
            redis_port=free_port(),
            api_key="right-key",
        )
    )
    server = Server([Listener(backend.app(), "127.0.0.1", port)], on_stopped=backend.close)
    await server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for key in ("wrong", None):
            headers = {"X-API-Key": key} if key else {}
            status, _ = await post(f"{base}/analyze", {"text": "x"}, headers)
            assert status == 401
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/metrics") as resp:
                assert "kongmasker_backend_auth_failures_total 2.0" in await resp.text()
            async with session.get(f"{base}/health/ready") as resp:
                assert resp.status == 503
                reasons = (await resp.json())["reasons"]
                assert any("kong" in r for r in reasons) and any("redis" in r for r in reasons)
            async with session.get(f"{base}/health") as resp:
                assert resp.status == 200
    finally:
        await server.drain()


def test_declarative_config_file_is_read_and_a_missing_one_leaves_it_unready(
    tmp_path: Any,
) -> None:
    conf = tmp_path / "kong.yml"
    conf.write_text("_format_version: '3.0'\nservices: []\n")
    settings = GatewaySettings.from_env({"KONG_DECLARATIVE_CONFIG": str(conf)})
    assert settings.declarative is not None and "services" in settings.declarative
    missing = GatewaySettings.from_env({"KONG_DECLARATIVE_CONFIG": str(tmp_path / "nope.yml")})
    assert missing.declarative is None
    listens = GatewaySettings.from_env({"KONG_PROXY_LISTEN": "0.0.0.0:9000 reuseport, [::]:9001"})
    assert listens.proxy == ("0.0.0.0", 9000)


# --- unmasking scope and fail-closed (issue 14 item 2, issue 11 item 10) ----------------


async def test_a_second_client_cannot_recover_the_first_clients_original(stack: Stack) -> None:
    # fail_secure off: both clients share the gateway's process-local store, the same way two
    # clients share one Redis; the first client's mapping is in it.
    stack.gw.apply(config(stack.mock_url, fail_secure=False))
    status, body = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 200 and "i-1234567890abcdef0" in body["content"][0]["text"]
    masked = stack.mock.history[-1]["body"]["messages"][0]["content"].split()[1]
    assert masked == "AWS_EC2_001"
    # The second client sends the masked id; the upstream echoes it; it must come back as is.
    probe = {"messages": [{"role": "user", "content": f"what is {masked}?"}]}
    status, body = await post(f"{stack.proxy}/v1/messages", probe)
    assert status == 200
    assert "i-1234567890abcdef0" not in json.dumps(body)
    assert body["content"][0]["text"].endswith(f"what is {masked}?")
    # Also when the probe carries an identifier of its own (so the reply is scanned).
    probe = {"messages": [{"role": "user", "content": f"{masked} or sg-0123456789abcdef0?"}]}
    status, body = await post(f"{stack.proxy}/v1/messages", probe)
    assert body["content"][0]["text"].endswith(f"{masked} or sg-0123456789abcdef0?")


@pytest.mark.parametrize("chunk", ["0", "5"])
async def test_a_store_that_dies_after_masking_cannot_leave_placeholders(
    stack: Stack, chunk: str
) -> None:
    class DiesAfterAllocate:
        """Stand-in for a Redis that crashes right after this request's allocation (the real
        crash is in tests/integration/dataplane/test_dp_gateway.py): every later call fails."""

        def __init__(self) -> None:
            self.alive = True

        async def allocate(self, items: Any) -> dict[str, str]:
            self.alive = False
            return {o: f"AWS_{t}_{i + 1:03d}" for i, (t, o) in enumerate(items)}

        async def lookup(self, _ids: Any) -> dict[str, str]:
            from kongmasker_dataplane.store import StoreUnavailable

            raise StoreUnavailable("ConnectionError")

        async def ping(self) -> bool:
            return self.alive

        async def close(self) -> None:
            return None

    stack.gw.apply(config(stack.mock_url))
    (masker,) = stack.gw._stores
    stack.gw._stores[masker] = DiesAfterAllocate()  # type: ignore[assignment]
    status, body = await post(
        f"{stack.proxy}/v1/messages", MESSAGE, headers={"X-Mock-Chunk-Bytes": chunk}
    )
    assert status == 200
    assert body["content"][0]["text"].endswith("restart i-1234567890abcdef0 now")
    assert "AWS_EC2_" not in json.dumps(body)


async def test_a_response_that_cannot_be_unmasked_fails_closed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kongmasker_dataplane import gateway as gateway_module

    def broken(_data: bytes, _mapping: Any) -> bytes:
        raise RuntimeError("restore failed")

    # The restore step itself failing (a defect, memory): the only way left for originals not
    # to come back once the request's own mapping is in hand.
    monkeypatch.setattr(gateway_module, "unmask_bytes", broken)
    stack.gw.apply(config(stack.mock_url, fail_secure=False))
    status, body = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 502
    assert "AWS_EC2_" not in json.dumps(body) and "fail-closed" in body["message"]
    # Streamed (chunked, status already sent): the stream is aborted, never completed.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.proxy}/v1/messages",
            data=json.dumps(MESSAGE),
            headers={"X-Mock-Chunk-Bytes": "16"},
        ) as resp,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    errors = stack.gw.metrics.masking_errors.labels("unmask")._value.get()
    assert errors == 2


async def test_body_above_kongs_limit_is_refused_and_never_forwarded(stack: Stack) -> None:
    """As nginx's client_max_body_size (KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE): 413, and the
    upstream sees nothing, identifiers or not."""
    stack.gw.settings = GatewaySettings.from_env({"KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE": "16k"})
    assert stack.gw.settings.max_body_bytes == 16 * 1024
    stack.gw.apply(config(stack.mock_url, fail_secure=False))
    big = {"messages": [{"role": "user", "content": "i-1234567890abcdef0 " + "x" * 17000}]}
    status, body = await post(f"{stack.proxy}/v1/messages", big)
    assert status == 413 and "too large" in body["message"]
    assert list(stack.mock.history) == []
    ok = {"messages": [{"role": "user", "content": "i-1234567890abcdef0 " + "x" * 9000}]}
    status, _ = await post(f"{stack.proxy}/v1/messages", ok)
    assert status == 200
    assert "i-1234567890abcdef0" not in json.dumps(stack.mock.history[-1]["body"])


async def test_a_bad_post_config_is_400_naming_the_field_and_the_live_one_stays(
    stack: Stack,
) -> None:
    stack.gw.apply(config(stack.mock_url))
    live = stack.gw.config
    bad = config(stack.mock_url, redis_hots="x")
    status, body = await post(f"{stack.admin}/config", bad)
    assert status == 400
    assert "redis_hots" in body["message"] and "unknown field" in body["message"]
    assert stack.gw.config is live


async def test_leak_fault_forwards_exactly_one_type_raw(stack: Stack) -> None:
    """The test fault the canary e2e test uses: only the named type passes through raw."""
    stack.gw.settings = GatewaySettings.from_env({"KONGMASKER_FAULT_LEAK_TYPE": "EC2"})
    stack.gw.apply(config(stack.mock_url, fail_secure=False))
    text = "i-1234567890abcdef0 talks to 10.0.1.23"
    status, _ = await post(f"{stack.proxy}/v1/messages", {"messages": [{"content": text}]})
    assert status == 200
    sent = stack.mock.history[-1]["body"]["messages"][0]["content"]
    assert "i-1234567890abcdef0" in sent and "10.0.1.23" not in sent


def test_a_bad_initial_config_stops_the_gateway_from_starting() -> None:
    gw = Gateway(
        GatewaySettings(declarative='{"_format_version": "3.0", "services": [{"name": 1}]}'),
        environ={},
    )
    with pytest.raises(ConfigError, match="services"):
        gw.load_initial()


async def test_a_plugin_that_authenticates_sends_the_upstream_key(stack: Stack) -> None:
    """Profile enterprise2: the plugin puts ANTHROPIC_API_KEY on the upstream request."""
    stack.gw.environ = {
        SCHEMA_ENV: PROFILES["enterprise2"].schema_json(),
        "ANTHROPIC_API_KEY": "sk-upstream",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(free_port()),
    }
    doc = config(stack.mock_url)
    doc["services"][0]["plugins"][0]["config"] = {"mapping_ttl": 60, "redis_database": 0}
    stack.gw.apply(doc)
    status, _ = await post(f"{stack.proxy}/v1/messages", {"messages": [{"content": "hello"}]})
    assert status == 200
    assert stack.mock.history[-1]["headers"]["x-api-key"].startswith("sha256:")
    # Redis comes from the environment (closed port here): identifiers are refused, fail-secure.
    status, _ = await post(f"{stack.proxy}/v1/messages", MESSAGE)
    assert status == 503
