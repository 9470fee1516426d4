"""The gateway image against real Redis (the redis image) and the mock AI upstream image.

Covers: masking with the plugin's Redis key schema and TTL, consistency across requests and
gateway restarts, unmasking scoped to the request (another request's masked ids stay masked),
chunk-split and SSE unmasking, fail-secure with Redis stopped, no placeholders when Redis
dies mid-response, every case of the shared masking vectors through HTTP, POST /config
changing routing live, the Admin API subset, and the SIGTERM drain.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import httpx
import pytest
from tests.integration.dataplane.dp_support import (
    GatewayProc,
    Mock,
    RedisServer,
    kong_config,
    start_redis,
)
from tests.support import wait_until

pytestmark = pytest.mark.integration

TEXT = (
    "Instance i-1234567890abcdef0 in vpc-0123456789abcdef0 (subnet-1234567890abcdef0) "
    "assumes arn:aws:iam::123456789012:role/ProductionRole, reads s3://my-production-bucket/k "
    "and talks to 10.0.1.23 and 203.0.113.1 at 12:30:45, build 1.2.3."
)
RAW_IDS = [
    "i-1234567890abcdef0",
    "vpc-0123456789abcdef0",
    "subnet-1234567890abcdef0",
    "arn:aws:iam::123456789012:role/ProductionRole",
    "my-production-bucket",
    "10.0.1.23",
    "203.0.113.1",
]
PREFIX = "Mock analysis of your request. You wrote:\n"


def reply_text(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return "".join(b["text"] for b in resp.json()["content"])


def last_upstream_text(mock: Mock) -> str:
    return mock.requests()[-1]["messages"][0]["content"]


@pytest.fixture(scope="module")
def gateway(gateway_factory: Any, mock: Mock, redis_server: RedisServer) -> GatewayProc:
    return gateway_factory(kong_config(mock.url, redis_server.port, mapping_ttl=3600))


def test_admin_api_subset(gateway: GatewayProc) -> None:
    status = httpx.get(f"{gateway.admin}/status").json()
    assert status["database"]["reachable"] is True
    assert {"total_requests", "connections_active"} <= set(status["server"])
    assert len(status["configuration_hash"]) == 32
    assert status["configuration_hash"] != "0" * 32
    assert httpx.get(f"{gateway.status}/status/ready").status_code == 200
    enabled = httpx.get(f"{gateway.admin}/plugins/enabled").json()["enabled_plugins"]
    assert "aws-masker" in enabled
    config = httpx.get(f"{gateway.admin}/config").json()["config"]
    # The vault reference is shown, the password never.
    assert "{vault://env/redis-password}" in config
    assert "dp-test-" not in config


def test_masks_request_stores_mapping_with_ttl_and_unmasks_reply(
    gateway: GatewayProc, mock: Mock, redis_server: RedisServer
) -> None:
    resp = gateway.post(TEXT)
    assert reply_text(resp) == PREFIX + TEXT
    sent = last_upstream_text(mock)
    for raw in RAW_IDS:
        assert raw not in sent, f"{raw} reached the upstream"
    assert "12:30:45" in sent and "build 1.2.3" in sent  # ordinary text untouched
    assert "s3://AWS_S3_BUCKET_" in sent and "AWS_IAM_ROLE_" in sent

    r = redis_server.client()
    rev = r.get("aws_masker:rev:" + base64.b64encode(b"i-1234567890abcdef0").decode())
    assert rev is not None and rev.startswith("AWS_EC2_") and rev in sent
    assert r.get(f"aws_masker:map:{rev}") == "i-1234567890abcdef0"
    assert 0 < r.ttl(f"aws_masker:map:{rev}") <= 3600
    assert int(r.get("aws_masker:cnt:ec2")) >= 1
    stats = r.keys("aws_masker:stats:*")
    assert stats and int(r.hget(stats[0], "ec2")) >= 1
    assert gateway.metric("kongmasker_gateway_masked_identifiers_total", 'type="EC2"') >= 1


def test_logs_never_hold_unmasked_text(gateway: GatewayProc) -> None:
    gateway.post(TEXT)
    logs = gateway.container.logs().decode()
    assert "masked {" in logs  # it does log, by type and count only
    for raw in RAW_IDS:
        assert raw not in logs
    assert "dp-test-" not in logs  # nor the Redis password


def test_unknown_masked_ids_pass_through_and_count_as_misses(gateway: GatewayProc) -> None:
    before = gateway.metric("kongmasker_gateway_unmask_misses_total")
    text = "is AWS_EC2_987654 i-0ccccccccccccccc3?"
    assert reply_text(gateway.post(text)) == PREFIX + text
    assert gateway.metric("kongmasker_gateway_unmask_misses_total") == before + 1


def test_same_original_same_masked_id_across_requests(gateway: GatewayProc, mock: Mock) -> None:
    gateway.post("first i-0aaaaaaaaaaaaaaa1 then")
    first = last_upstream_text(mock).split()[1]
    gateway.post("again: i-0aaaaaaaaaaaaaaa1 and i-0bbbbbbbbbbbbbbb2")
    words = last_upstream_text(mock).split()
    assert words[1] == first
    assert words[3] != first and words[3].startswith("AWS_EC2_")


def test_another_requests_masked_id_is_not_unmasked(gateway: GatewayProc, mock: Mock) -> None:
    # Client 1 masks an id; client 2 (same gateway, same Redis) sends the masked id and must
    # not get client 1's original back (issue 14: the original plugin's scope, per request).
    gateway.post("remember sg-0123456789abcdef0")
    masked = last_upstream_text(mock).split()[1]
    assert masked.startswith("AWS_SECURITY_GROUP_")
    for probe in (f"what about {masked}?", f"what about {masked} and i-0ddddddddddddddd4?"):
        reply = reply_text(gateway.post(probe))
        assert reply == PREFIX + probe
        assert "sg-0123456789abcdef0" not in reply


def test_masked_ids_split_across_response_chunks_are_unmasked(
    gateway: GatewayProc, mock: Mock
) -> None:
    for size in (1, 3, 7):
        resp = gateway.post(
            TEXT, headers={"X-Mock-Chunk-Bytes": str(size), "X-Mock-Chunk-Delay-Ms": "1"}
        )
        assert reply_text(resp) == PREFIX + TEXT
        assert "content-length" not in resp.headers or resp.headers.get("transfer-encoding")


@pytest.mark.parametrize("delta_chars", ["0", "1", "2", "5"])
def test_streaming_sse_reply_is_unmasked_even_with_ids_split_across_deltas(
    gateway: GatewayProc, delta_chars: str
) -> None:
    resp = gateway.post(TEXT, stream=True, headers={"X-Mock-Delta-Chars": delta_chars})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    text = ""
    names = []
    for block in resp.text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                names.append(event["type"])
                if event.get("type") == "content_block_delta":
                    text += event["delta"]["text"]
    assert text == PREFIX + TEXT
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.index("content_block_stop") > max(
        i for i, n in enumerate(names) if n == "content_block_delta"
    )


def test_mask_consistency_survives_a_gateway_restart(
    gateway_factory: Any, mock: Mock, redis_server: RedisServer
) -> None:
    config = kong_config(mock.url, redis_server.port)
    first = gateway_factory(config)
    first.post("restart check ami-0abcdef1234567890")
    masked = last_upstream_text(mock).split()[2]
    assert masked.startswith("AWS_AMI_")
    first.container.stop(timeout=20)
    first.container.reload()
    assert first.container.attrs["State"]["ExitCode"] == 0
    second = gateway_factory(config)
    second.post("restart check ami-0abcdef1234567890")
    assert last_upstream_text(mock).split()[2] == masked
    assert reply_text(second.post("and ami-0abcdef1234567890")) == (
        PREFIX + "and ami-0abcdef1234567890"
    )


def test_fail_secure_refuses_when_redis_is_down(
    gateway_factory: Any, mock: Mock, containers: Any, images: dict[str, str]
) -> None:

    own_redis = start_redis(containers, images)
    gw = gateway_factory(kong_config(mock.url, own_redis.port))
    assert gw.post("warm up i-1234567890abcdef0").status_code == 200
    own_redis.container.stop(timeout=10)
    before = len(mock.requests())
    resp = gw.post("leak i-1234567890abcdef0 please")
    assert resp.status_code == 503
    assert "fail-secure" in resp.json()["message"]
    assert len(mock.requests()) == before, "the request reached the upstream"
    # Text without identifiers needs no mapping and still flows.
    assert gw.post("hello there").status_code == 200
    assert gw.metric("kongmasker_gateway_fail_secure_refusals_total") == 1
    own_redis.container.start()
    own_redis.wait()
    wait_until(
        lambda: gw.post("back i-1234567890abcdef0").status_code == 200,
        timeout=30,
        what="gateway recovering after redis restart",
    )


def test_post_config_changes_routing_live(
    gateway_factory: Any, mock: Mock, redis_server: RedisServer
) -> None:
    gw = gateway_factory(None, wait_ready=False)
    assert httpx.get(f"{gw.status}/status/ready").status_code == 503
    assert httpx.post(f"{gw.proxy}/v1/messages", json={}).status_code == 404

    first = kong_config(mock.url, redis_server.port)
    resp = httpx.post(f"{gw.admin}/config", json=first)
    assert resp.status_code == 201, resp.text
    assert httpx.get(f"{gw.status}/status/ready").status_code == 200
    hash_1 = httpx.get(f"{gw.admin}/status").json()["configuration_hash"]
    assert gw.post("hi i-1234567890abcdef0").status_code == 200

    # Move the route: /api (stripped) -> upstream /v1. YAML text, as `kong config` would send.
    moved = kong_config(mock.url + "/v1", redis_server.port)
    moved["services"][0]["routes"] = [{"name": "api", "paths": ["/api"], "strip_path": True}]
    import yaml

    resp = httpx.post(f"{gw.admin}/config", json={"config": yaml.safe_dump(moved)})
    assert resp.status_code == 201, resp.text
    assert httpx.get(f"{gw.admin}/status").json()["configuration_hash"] != hash_1
    assert gw.post("hi").status_code == 404
    resp = httpx.post(
        f"{gw.proxy}/api/messages", json={"messages": [{"content": "x vol-049df61146f12c45a"}]}
    )
    assert resp.status_code == 200
    assert mock.requests()[-1]["messages"][0]["content"].startswith("x AWS_EBS_VOL_")

    # An invalid config is refused field by field and the live one stays.
    bad = kong_config("ftp://nowhere", redis_server.port, mapping_ttl="soon")
    resp = httpx.post(f"{gw.admin}/config", json=bad)
    assert resp.status_code == 400
    fields = resp.json()["fields"]
    assert "url" in fields["services"]["0"]
    assert "mapping_ttl" in fields["services"]["0"]["plugins"]["0"]["config"]
    assert httpx.post(f"{gw.proxy}/api/messages", json={"messages": []}).status_code == 200


def test_sigterm_drains_in_flight_requests_and_exits_zero(
    gateway_factory: Any, mock: Mock, redis_server: RedisServer
) -> None:
    gw = gateway_factory(kong_config(mock.url, redis_server.port))
    mock.clear()
    result: dict[str, Any] = {}

    def slow_request() -> None:
        # ~200 chunks of 4 bytes, 10 ms apart: about two seconds in flight.
        result["resp"] = gw.post(
            "drain " + "x" * 500 + " i-1234567890abcdef0",
            headers={"X-Mock-Chunk-Bytes": "4", "X-Mock-Chunk-Delay-Ms": "10"},
        )

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_until(lambda: len(mock.requests()) == 1, timeout=20, what="request reaching the mock")
    stopper = threading.Thread(target=lambda: gw.container.stop(timeout=30))
    stopper.start()

    def not_ready() -> bool:
        return httpx.get(f"{gw.status}/status/ready", timeout=2).status_code == 503

    wait_until(
        not_ready, timeout=10, what="/status/ready turning 503 during the drain", interval=0.05
    )
    worker.join(60)
    stopper.join(60)
    assert reply_text(result["resp"]).endswith("i-1234567890abcdef0")
    gw.container.reload()
    assert gw.container.attrs["State"]["ExitCode"] == 0


def test_two_gateways_on_one_redis_agree_on_new_ids_under_concurrency(
    gateway_factory: Any, mock: Mock, redis_server: RedisServer
) -> None:
    config = kong_config(mock.url, redis_server.port)
    gateways = [gateway_factory(config), gateway_factory(config)]
    fresh = [f"i-0{n:016x}" for n in range(0xC0FFEE, 0xC0FFEE + 6)]
    text = "concurrent " + " ".join(fresh)
    results: list[httpx.Response] = []

    def send(gw: GatewayProc) -> None:
        results.append(gw.post(text))

    threads = [threading.Thread(target=send, args=(gw,)) for gw in gateways * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in results] == [200] * 6
    seen = {r["messages"][0]["content"] for r in mock.requests()[-6:]}
    assert len(seen) == 1, seen  # every request got the same six masked ids
    masked = seen.pop().split()[1:]
    assert len(set(masked)) == 6 and all(m.startswith("AWS_EC2_") for m in masked)


def test_mappings_expire_after_mapping_ttl(
    gateway_factory: Any, mock: Mock, redis_server: RedisServer
) -> None:
    gw = gateway_factory(kong_config(mock.url, redis_server.port, mapping_ttl=1))
    gw.post("short-lived snap-066877671789bd71b")
    masked = last_upstream_text(mock).split()[1]
    r = redis_server.client()
    assert 0 < r.ttl(f"aws_masker:map:{masked}") <= 1
    wait_until(lambda: not r.exists(f"aws_masker:map:{masked}"), timeout=15, what="mapping expiry")
    # The id is no longer known: it comes back masked (a miss), never as something else.
    assert reply_text(gw.post(f"and {masked}")) == PREFIX + f"and {masked}"
    # The original masks again, to a new number (counters never go back).
    gw.post("short-lived snap-066877671789bd71b")
    again = last_upstream_text(mock).split()[1]
    assert again.startswith("AWS_SNAPSHOT_") and again != masked


def test_redis_dying_mid_response_never_yields_placeholders(
    gateway_factory: Any, mock: Mock, containers: Any, images: dict[str, str]
) -> None:
    """Issue 11 item 10: Redis killed while the reply streams back. The reply is restored from
    the request's own mapping, so the client gets the originals (never a 200 with AWS_* ids)."""
    own_redis = start_redis(containers, images)
    gw = gateway_factory(kong_config(mock.url, own_redis.port))
    result: dict[str, httpx.Response] = {}
    slow = {"X-Mock-Chunk-Bytes": "8", "X-Mock-Chunk-Delay-Ms": "40"}  # ~3 s of reply
    worker = threading.Thread(target=lambda: result.update(r=gw.post(TEXT, headers=slow)))
    worker.start()
    wait_until(
        lambda: bool(mock.requests()) and "AWS_EC2_" in last_upstream_text(mock),
        timeout=30,
        what="request masked and forwarded",
    )
    own_redis.container.kill()
    worker.join(timeout=60)
    resp = result["r"]
    assert resp.status_code == 200
    assert reply_text(resp) == PREFIX + TEXT
    assert "AWS_" not in resp.text


def test_every_vector_through_the_gateway(gateway: GatewayProc, mock: Mock) -> None:
    """The shared vectors (operator/kongmasker/api/masking_vectors.json) through HTTP: no
    identifier reaches the upstream, the reply is the exact original, negatives pass unchanged."""
    from kongmasker.api import vectors

    leaks, wrong = [], []
    for case in vectors.positives():
        reply = reply_text(gateway.post(case.text))
        sent = last_upstream_text(mock)
        leaks += [(case.id, i) for i in case.identifiers if i in sent]
        if reply != PREFIX + case.text:
            wrong.append(case.id)
    for neg in vectors.negatives():
        reply = reply_text(gateway.post(neg.text))
        if last_upstream_text(mock) != neg.text or reply != PREFIX + neg.text:
            wrong.append(neg.id)
    assert leaks == [] and wrong == []
