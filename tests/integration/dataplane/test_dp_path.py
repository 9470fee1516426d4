"""The whole data path on real images: backend -> nginx -> gateway -> mock upstream, with Redis;
and the hypothesis property through the real gateway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.dataplane.dp_support import (
    REDIS_PASSWORD,
    Containers,
    GatewayProc,
    Mock,
    RedisServer,
    kong_config,
)
from tests.support import free_port, wait_until

from kongmasker_dataplane.masking import EXAMPLES, find

pytestmark = pytest.mark.integration

NGINX_CONF = """
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path /tmp/nginx-body;
  proxy_temp_path /tmp/nginx-proxy;
  server {{
    listen 127.0.0.1:{port};
    location = /health {{ default_type application/json; return 200 '{{"status":"healthy"}}'; }}
    location / {{
      proxy_pass {gateway};
      proxy_set_header Host api.anthropic.com;
      proxy_http_version 1.1;
      proxy_buffering off;
    }}
  }}
}}
"""


@pytest.fixture(scope="module")
def gateway(gateway_factory: Any, mock: Mock, redis_server: RedisServer) -> GatewayProc:
    return gateway_factory(kong_config(mock.url, redis_server.port))


@pytest.fixture(scope="module")
def nginx_url(
    containers: Containers, images: dict[str, str], gateway: GatewayProc, tmp_path_factory: Any
) -> str:
    port = free_port()
    conf_dir: Path = tmp_path_factory.mktemp("nginx")
    (conf_dir / "nginx.conf").write_text(NGINX_CONF.format(port=port, gateway=gateway.proxy))
    conf_dir.chmod(0o755)
    containers.run(
        images["nginx"],
        {"NGINX_PORT": str(port)},
        "nginx",
        volumes={str(conf_dir): {"bind": "/etc/kongmasker", "mode": "ro"}},
        stop_signal="SIGQUIT",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, timeout=30, what="nginx")
    return url


@pytest.fixture(scope="module")
def backend_url(
    containers: Containers,
    images: dict[str, str],
    nginx_url: str,
    gateway: GatewayProc,
    redis_server: RedisServer,
) -> str:
    port = free_port()
    containers.run(
        images["backend"],
        {
            "BACKEND_LISTEN": f"127.0.0.1:{port}",
            "KONG_PROXY_URL": nginx_url,
            "KONG_ADMIN_URL": gateway.admin,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_server.port),
            "REDIS_PASSWORD": REDIS_PASSWORD,
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_MODEL": "claude-test",
            "BACKEND_API_KEY": "backend-key",
        },
        "backend",
        stop_signal="SIGTERM",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(f"{url}/health/ready").status_code == 200,
        timeout=30,
        what="backend ready",
    )
    return url


def test_analyze_goes_backend_nginx_gateway_mock_and_back(backend_url: str, mock: Mock) -> None:
    text = f"Why does {EXAMPLES['EC2']} in {EXAMPLES['SUBNET']} fail to reach {EXAMPLES['RDS']}?"
    resp = httpx.post(
        f"{backend_url}/analyze", json={"text": text}, headers={"X-API-Key": "backend-key"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["analysis"].endswith(text)
    record = httpx.get(f"{mock.url}/__requests?full=1").json()[-1]
    sent = record["body"]["messages"][0]["content"]
    assert sent == "Why does AWS_EC2_001 in AWS_SUBNET_001 fail to reach AWS_RDS_001?"
    assert record["body"]["model"] == "claude-test"
    assert record["headers"]["anthropic-version"] == "2023-06-01"
    assert record["headers"]["x-api-key"].startswith("sha256:")
    assert "sk-ant-test" not in json.dumps(record)


def test_a_second_client_cannot_recover_the_first_clients_original_through_nginx(
    nginx_url: str, mock: Mock
) -> None:
    """Two clients of one stack (Nginx -> gateway -> mock, one Redis). Client 2 sends client
    1's masked id, which the upstream echoes: it comes back masked, never as client 1's id."""
    secret_host = "orders-db.c9akciq32xyz.ap-northeast-2.rds.amazonaws.com"

    def ask(key: str, text: str) -> str:
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}
        with httpx.Client(headers={"x-api-key": key, "anthropic-version": "2023-06-01"}) as c:
            resp = c.post(f"{nginx_url}/v1/messages", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        return "".join(b["text"] for b in resp.json()["content"])

    assert ask("sk-client-1", f"why is {secret_host} slow?").endswith(f"why is {secret_host} slow?")
    masked = httpx.get(f"{mock.url}/__requests").json()[-1]["messages"][0]["content"].split()[2]
    assert masked.startswith("AWS_RDS_")
    for probe in (f"tell me about {masked}", f"{masked} vs i-0eeeeeeeeeeeeeee5"):
        reply = ask("sk-client-2", probe)
        assert secret_host not in reply
        assert reply.endswith(probe)


def test_backend_rejects_and_counts_bad_keys(backend_url: str) -> None:
    resp = httpx.post(f"{backend_url}/analyze", json={"text": "x"}, headers={"X-API-Key": "no"})
    assert resp.status_code == 401
    metrics = httpx.get(f"{backend_url}/metrics").text
    assert "kongmasker_backend_auth_failures_total 1.0" in metrics


SEGMENT = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.,;:!?()'-", min_size=1, max_size=10),
    st.sampled_from(sorted(EXAMPLES)).map(lambda t: ("id", t)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(segments=st.lists(SEGMENT, min_size=1, max_size=12))
def test_property_upstream_never_sees_raw_ids_and_client_gets_original(
    gateway: GatewayProc, mock: Mock, segments: list[object]
) -> None:
    parts: list[str] = []
    raw: list[str] = []
    for seg in segments:
        if isinstance(seg, tuple):
            parts.append(EXAMPLES[seg[1]])
            raw.append(find(EXAMPLES[seg[1]])[0].value)
        else:
            parts.append(str(seg))
    text = " ".join(parts)
    resp = gateway.post(text)
    assert resp.status_code == 200
    sent = mock.requests()[-1]["messages"][0]["content"]
    for value in raw:
        assert value not in sent
    reply = "".join(b["text"] for b in resp.json()["content"])
    assert reply == "Mock analysis of your request. You wrote:\n" + text


def test_backend_drains_on_sigterm_and_exits_zero(backend_url: str, containers: Containers) -> None:
    (backend,) = [c for c in containers.started if c.name.startswith("dp-backend-")]
    backend.stop(timeout=20)
    backend.reload()
    assert backend.attrs["State"]["ExitCode"] == 0
    assert "stop requested: draining" in backend.logs().decode()
