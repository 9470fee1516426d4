"""What the graceful restart needs from the data plane, on the real images:

* the gateway rides out a short Redis outage (RedisStore retries within
  KONG_REDIS_RETRY_SECONDS) and still answers 503 past that window (fail-secure);
* a second gateway binds the same ports (SO_REUSEPORT) and writes its ready file once it
  serves; the first one drains on SIGTERM while the second keeps answering.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from tests.integration.dataplane.dp_support import Mock, kong_config, start_redis
from tests.support import free_port, wait_until

pytestmark = pytest.mark.integration

READY_FILE = "/tmp/kongmasker-ready"


def _post_in_thread(gw: Any, text: str) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        out["resp"] = gw.post(text)
        out["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _active(gw: Any) -> int:
    return int(httpx.get(f"{gw.status}/status", timeout=5).json()["server"]["connections_active"])


def test_a_redis_restart_within_the_retry_window_is_ridden_out(
    gateway_factory: Any, mock: Mock, containers: Any, images: dict[str, str]
) -> None:
    own = start_redis(containers, images)
    gw = gateway_factory(
        kong_config(mock.url, own.port), extra_env={"KONG_REDIS_RETRY_SECONDS": "20"}
    )
    assert gw.post("warm up i-1234567890abcdef0").status_code == 200
    own.container.stop(timeout=10)
    thread, out = _post_in_thread(gw, "during the outage i-0fedcba9876543210")
    # The request is inside the gateway, retrying, while Redis is down.
    wait_until(lambda: _active(gw) >= 1, timeout=10, what="request held while Redis is down")
    assert "resp" not in out
    own.container.start()
    thread.join(timeout=30)
    assert out["resp"].status_code == 200, out["resp"].text
    assert "i-0fedcba9876543210" in out["resp"].text, "the original is restored"
    assert gw.metric("kongmasker_gateway_fail_secure_refusals_total") == 0


def test_past_the_retry_window_the_gateway_still_fails_secure(
    gateway_factory: Any, mock: Mock, containers: Any, images: dict[str, str]
) -> None:
    own = start_redis(containers, images)
    gw = gateway_factory(
        kong_config(mock.url, own.port), extra_env={"KONG_REDIS_RETRY_SECONDS": "2"}
    )
    assert gw.post("warm up i-1234567890abcdef0").status_code == 200
    own.container.stop(timeout=10)
    before = len(mock.requests())
    started = time.monotonic()
    resp = gw.post("leak i-1234567890abcdef0 please")
    took = time.monotonic() - started
    assert resp.status_code == 503
    assert "fail-secure" in resp.json()["message"]
    assert 1.8 <= took < 10, f"refused after {took:.1f}s, expected about the 2s window"
    assert len(mock.requests()) == before, "the request reached the upstream"


def test_a_second_gateway_shares_the_ports_and_takes_over(
    gateway_factory: Any, mock: Mock, redis_server: Any
) -> None:
    ports = (free_port(), free_port(), free_port())
    config = kong_config(mock.url, redis_server.port)
    first = gateway_factory(config, ports=ports)
    assert first.container.exec_run(["cat", READY_FILE]).exit_code == 0
    second = gateway_factory(config, ports=ports)
    wait_until(
        lambda: second.container.exec_run(["cat", READY_FILE]).exit_code == 0,
        timeout=30,
        what="second gateway ready file",
    )
    first.container.stop(timeout=10)  # SIGTERM: drains and exits 0
    first.container.reload()
    assert first.container.attrs["State"]["ExitCode"] == 0
    for _ in range(20):
        assert second.post("after handover i-1234567890abcdef0").status_code == 200
