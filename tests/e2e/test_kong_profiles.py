"""Issue 13 and issue 11 item 5 end to end, on the real API server, dockerd and images: the
stack under each aws-masker plugin profile the local gateway implements (strict: it refuses
what that profile's schema refuses), Kong's container settings, a large body masked, a config
typo refused before anything starts, a leaking plugin caught by the canary, and a
configuration changed through the Admin API put back by the operator.

The gateway is the local stand-in for Kong (no Kong image can be pulled here); docs/kong.md
says what only a real Kong image can prove.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from tests.e2e.stack_env import StackEnv, start_operator
from tests.support import wait_until

pytestmark = pytest.mark.e2e

RAW = ("i-1234567890abcdef0", "10.0.1.23", "arn:aws:iam::123456789012:role/DeployRole")


def _text(filler: int) -> str:
    # Identifiers at both ends of a body well above Kong's 8 KiB default body buffer.
    return (
        f"why is {RAW[0]} slow? it talks to {RAW[1]}. "
        + "lorem ipsum " * (filler // 12)
        + f" it assumes {RAW[2]}"
    )


def _send(url: str, text: str) -> httpx.Response:
    body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/messages", json=body, timeout=30)


def _history(env: StackEnv) -> list[dict[str, Any]]:
    return list(httpx.get(f"{env.mock_url}/__requests?full=1", timeout=10).json())


def _restart_operator(env: StackEnv, **extra: str) -> None:
    assert env.operator is not None
    env.operator.stop()
    env.operator = start_operator(
        env.namespace,
        env.tmp / "operator-kong.log",
        KONGMASKER_MONITOR_CANARY_INTERVAL="5",
        KONGMASKER_MONITOR_CANARY_PER_TYPE_TIMING="false",
        KONGMASKER_MONITOR_STARTUP_GRACE="1",
        KONGMASKER_MONITOR_INTERVAL="2",
        **extra,
    )


@pytest.mark.parametrize("profile", ["local", "mvp", "enterprise2"])
def test_stack_ready_under_each_profile_strict_large_body_masked(
    stack_env: StackEnv, profile: str
) -> None:
    env = stack_env
    name = f"kong-{profile}"
    env.apply(name, env.spec(name, kong={"plugin": {"profile": profile}}))
    status = env.wait_ready(name)
    proxy, admin = status["endpoints"]["proxy"], status["endpoints"]["kongAdmin"]

    kong = env.client.containers.get(env.container_name(name, "kong"))
    config = kong.attrs["Config"]
    environ = dict(e.split("=", 1) for e in config["Env"])
    assert config["StopSignal"] == "SIGQUIT"
    assert environ["KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE"] == "10m"
    assert environ["KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE"] == "10m"
    assert environ["KONG_ADMIN_LISTEN"] == f"127.0.0.1:{env.ports[name]['admin']} reuseport"
    assert json.loads(environ["KONGMASKER_PLUGIN_SCHEMA"])["profile"] == profile
    print(f"{profile}: docker inspect StopSignal={config['StopSignal']} "
          f"StopTimeout={config.get('StopTimeout')} "
          f"body={environ['KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE']}")  # fmt: skip

    # A body of ~20 KiB with identifiers at both ends: masked upstream, restored in the reply.
    text = _text(20 * 1024)
    assert len(text.encode()) > 8 * 1024
    resp = _send(proxy, text)
    assert resp.status_code == 200, resp.text
    seen = _history(env)[-1]
    sent = json.dumps(seen["body"])
    assert len(sent) > 8 * 1024
    assert not any(raw in sent for raw in RAW), "a raw identifier reached the upstream"
    reply = resp.json()["content"][0]["text"]
    assert all(raw in reply for raw in RAW)
    # enterprise2's plugin authenticates to the upstream itself (ANTHROPIC_API_KEY).
    assert ("x-api-key" in seen["headers"]) is (profile == "enterprise2")

    # Strict as Kong: a field this profile's schema does not have is refused, live config kept.
    live = httpx.get(f"{admin}/status", timeout=10).json()["configuration_hash"]
    bad = {
        "_format_version": "3.0",
        "services": [
            {
                "name": "s",
                "url": env.mock_url,
                "routes": [{"name": "r", "paths": ["/v1"]}],
                "plugins": [{"name": "aws-masker", "config": {"redis_hots": "x"}}],
            }
        ],
    }
    refused = httpx.post(f"{admin}/config", json=bad, timeout=10)
    assert refused.status_code == 400
    assert "redis_hots" in refused.text and f"plugin schema '{profile}'" in refused.text
    assert httpx.get(f"{admin}/status", timeout=10).json()["configuration_hash"] == live

    # Above Kong's body limit: 413 from Kong itself (straight to its proxy port), nothing sent.
    before = len(_history(env))
    kong_proxy = f"http://127.0.0.1:{env.ports[name]['proxy']}"
    too_big = _send(kong_proxy, RAW[0] + " " + "x" * (10 * 1024 * 1024 + 10))
    assert too_big.status_code == 413
    assert len(_history(env)) == before


def test_config_typo_is_a_condition_and_no_container_starts(stack_env: StackEnv) -> None:
    env = stack_env
    name = "kong-typo"
    plugin = {"profile": "mvp", "config": {"mask_ec2_instance": True}}
    env.apply(name, env.spec(name, kong={"plugin": plugin}))
    cond = env.wait_condition(name, "PreflightPassed", "False", "InvalidSpec", timeout=60)
    assert "spec.kong.plugin.config.mask_ec2_instance: unknown field" in cond["message"]
    assert "'mvp' profile" in cond["message"]
    assert env.containers(name) == []
    assert env.status(name)["phase"] == "Pending"


def test_a_plugin_leaking_one_type_is_caught_by_the_canary(stack_env: StackEnv) -> None:
    env = stack_env
    _restart_operator(env)
    name = "kong-leak"
    leak = [{"name": "KONGMASKER_FAULT_LEAK_TYPE", "value": "EC2"}]
    env.apply(name, env.spec(name, kong={"env": leak}))
    env.wait_ready(name)
    ready_at = time.monotonic()
    cond = env.wait_condition(
        name, "MaskingVerified", "False", "UnmaskedIdentifierSeen", timeout=60
    )
    took = time.monotonic() - ready_at
    print(f"leak caught {took:.1f}s after Ready (canary period 5 s): {cond['message']}")
    assert "1/" in cond["message"] and "ec2" in cond["message"]
    wait_until(
        lambda: env.status(name)["phase"] == "Degraded",
        timeout=30,
        what="phase Degraded while masking is not verified",
    )
    assert env.condition(name, "Ready")["status"] == "True"  # the components are healthy


def test_a_config_posted_without_the_plugin_is_put_back(stack_env: StackEnv) -> None:
    env = stack_env
    _restart_operator(env)
    name = "kong-drift"
    env.apply(name, env.spec(name))
    status = env.wait_ready(name)
    proxy, admin = status["endpoints"]["proxy"], status["endpoints"]["kongAdmin"]
    env.wait_condition(name, "MaskingVerified", "True", "CanaryPassed", timeout=60)
    # The operator has recorded the hash Kong gives the rendered config, beside the file.
    kong = env.client.containers.get(env.container_name(name, "kong"))
    recorded = wait_until(
        lambda: (
            (r := kong.exec_run(["cat", "/etc/kongmasker/kong.yml.applied-hash"])).exit_code == 0
            and r.output.decode().strip()
        ),
        timeout=30,
        what="the operator recording Kong's configuration hash",
    )
    rendered = httpx.get(f"{admin}/status", timeout=10).json()["configuration_hash"]
    assert recorded == rendered

    bare = {
        "_format_version": "3.0",
        "services": [
            {"name": "open", "url": env.mock_url, "routes": [{"name": "o", "paths": ["/v1"]}]}
        ],
    }
    assert httpx.post(f"{admin}/config", json=bare, timeout=10).status_code == 201
    posted_at = time.monotonic()
    assert httpx.get(f"{admin}/status", timeout=10).json()["configuration_hash"] != rendered

    drift = wait_until(
        lambda: env.events_with(name, "KongConfigDrift", kind="Warning"),
        timeout=30,
        what="the KongConfigDrift Warning",
    )
    wait_until(
        lambda: httpx.get(f"{admin}/status", timeout=10).json()["configuration_hash"] == rendered,
        timeout=30,
        what="the rendered configuration back in Kong",
    )
    took = time.monotonic() - posted_at
    print(f"drift repaired {took:.1f}s after the POST (reconcile period 5 s): "
          f"{drift[0]['message']}")  # fmt: skip
    assert "changed through the Admin API" in drift[0]["message"]

    resp = _send(proxy, _text(100))
    assert resp.status_code == 200
    sent = json.dumps(_history(env)[-1]["body"])
    assert not any(raw in sent for raw in RAW), "a raw identifier reached the upstream"
