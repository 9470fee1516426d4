"""Unit tests of the declarative config, request-body handling and the stream splitter."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kongmasker_dataplane import bodies
from kongmasker_dataplane.config import (
    ConfigError,
    load_config,
    parse_body,
    redact,
    upstream_path,
)
from kongmasker_dataplane.masking import (
    MASKED_ID_BYTES_RE,
    LocalAllocator,
    StreamUnmasker,
    unmask_bytes,
)

pytestmark = pytest.mark.unit

BASE = {
    "_format_version": "3.0",
    "services": [
        {
            "name": "claude-api-service",
            "url": "http://127.0.0.1:18090",
            "routes": [{"name": "claude", "paths": ["/v1"], "strip_path": False}],
            "plugins": [
                {
                    "name": "aws-masker",
                    "config": {
                        "redis_host": "127.0.0.1",
                        "redis_port": 16379,
                        "redis_password": "{vault://env/redis-password}",
                        "mapping_ttl": 86400,
                    },
                }
            ],
        }
    ],
}
ENV = {"REDIS_PASSWORD": "s3cr3t-pw"}


def test_valid_config_resolves_env_vault_and_defaults() -> None:
    config = load_config(BASE, ENV)
    (svc,) = config.services
    assert (svc.scheme, svc.host, svc.port, svc.path) == ("http", "127.0.0.1", 18090, "/")
    assert svc.masker is not None
    assert svc.masker.redis_password == "s3cr3t-pw"
    assert svc.masker.mapping_ttl == 86400
    assert svc.masker.fail_secure is True
    assert len(config.hash) == 32
    assert load_config(json.loads(json.dumps(BASE)), ENV).hash == config.hash


def test_missing_vault_variable_is_a_field_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(BASE, {})
    assert err.value.flat == [
        "services[0].plugins[0].config.redis_password: "
        "vault reference: environment variable REDIS_PASSWORD is not set"
    ]


def test_field_level_errors_are_nested_like_the_input() -> None:
    bad = json.loads(json.dumps(BASE))
    bad["services"][0]["url"] = "ftp://x"
    bad["services"][0]["routes"][0]["paths"] = ["v1"]
    bad["services"][0]["plugins"][0]["config"]["mapping_ttl"] = "soon"
    bad["services"][0]["plugins"].append({"name": "rate-limiting"})
    bad["bogus"] = 1
    with pytest.raises(ConfigError) as err:
        load_config(bad, ENV)
    fields = err.value.fields
    assert fields["bogus"] == "unknown field"
    svc = fields["services"]["0"]
    assert "http(s)" in svc["url"]
    assert "start with" in svc["routes"]["0"]["paths"]
    assert svc["plugins"]["0"]["config"]["mapping_ttl"] == "expected an integer"
    assert "not implemented by the local gateway" in svc["plugins"]["1"]["name"]


def test_format_version_is_required() -> None:
    with pytest.raises(ConfigError, match="_format_version"):
        load_config({"services": []}, ENV)


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (json.dumps(BASE).encode(), "application/json"),
        (json.dumps({"config": json.dumps(BASE)}).encode(), "application/json"),
        (
            b"_format_version: '3.0'\nservices:\n- name: claude-api-service\n"
            b"  url: http://127.0.0.1:18090\n  routes: [{name: claude, paths: [/v1]}]\n",
            "text/yaml",
        ),
    ],
)
def test_post_config_body_shapes(body: bytes, ctype: str) -> None:
    data = parse_body(body, ctype)
    assert load_config(data, ENV).services[0].name == "claude-api-service"


def test_unparsable_body_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_body(b"- just\n- a list\n")


@pytest.mark.parametrize(
    ("service_url", "strip", "prefix", "path", "expected"),
    [
        ("http://u", False, "/v1", "/v1/messages", "/v1/messages"),
        ("http://u", True, "/v1", "/v1/messages", "/messages"),
        ("http://u/v1", True, "/api", "/api/messages", "/v1/messages"),
        ("http://u/base/", True, "/api", "/api/x", "/base/x"),
        ("http://u/base", True, "/api", "/api", "/base"),
    ],
)
def test_kong_path_joining(
    service_url: str, strip: bool, prefix: str, path: str, expected: str
) -> None:
    data = {
        "_format_version": "3.0",
        "services": [
            {"name": "s", "url": service_url, "routes": [{"paths": [prefix], "strip_path": strip}]}
        ],
    }
    config = load_config(data, {})
    service, route, matched = config.match(path) or (None, None, None)
    assert service is not None and route is not None and matched is not None
    assert upstream_path(service, route, matched, path) == expected


def test_longest_route_prefix_wins_and_unmatched_is_none() -> None:
    data = {
        "_format_version": "3.0",
        "services": [
            {"name": "a", "url": "http://a", "routes": [{"paths": ["/v1"]}]},
            {"name": "b", "url": "http://b", "routes": [{"paths": ["/v1/messages"]}]},
        ],
    }
    config = load_config(data, {})
    assert config.match("/v1/messages")[0].name == "b"  # type: ignore[index]
    assert config.match("/v1/models")[0].name == "a"  # type: ignore[index]
    assert config.match("/v2") is None


def test_redact_hides_literal_secrets_but_keeps_vault_references() -> None:
    data = json.loads(json.dumps(BASE))
    data["plugins"] = [{"name": "aws-masker", "config": {"redis_password": "literal-pw"}}]
    shown = json.dumps(redact(data))
    assert "literal-pw" not in shown
    assert "{vault://env/redis-password}" in shown


# --- request bodies ----------------------------------------------------------------------


def _mask_body(body: bytes, ctype: str) -> bytes:
    parsed = bodies.parse_body(body, ctype)
    alloc = LocalAllocator()
    return bodies.rebuild(parsed, {o: alloc(t, o) for t, o in parsed.items})


def test_json_escapes_cannot_hide_an_identifier() -> None:
    body = b'{"content": "arn:aws:iam::123456789012:role\\/Prod and i\\u002d1234567890abcdef0"}'
    out = json.loads(_mask_body(body, "application/json"))
    assert out == {"content": "AWS_IAM_ROLE_001 and AWS_EC2_001"}


def test_json_keys_are_masked_too() -> None:
    out = json.loads(_mask_body(b'{"10.0.0.5": {"state": "up"}}', "application/json"))
    assert out == {"AWS_PRIVATE_IP_001": {"state": "up"}}


def test_body_without_identifiers_is_untouched_bytes() -> None:
    body = b'{ "a" : 1.50,\n "b": "plain" }'
    parsed = bodies.parse_body(body, "application/json")
    assert parsed.findings == {}


def test_form_and_text_bodies() -> None:
    form = b"q=i-1234567890abcdef0+now&arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Auser%2Fbob&x=%7E"
    assert _mask_body(form, "application/x-www-form-urlencoded") == (
        b"q=AWS_EC2_001+now&arn=AWS_IAM_USER_001&x=%7E"
    )
    assert _mask_body(b"ip 10.1.2.3\n", "text/plain") == b"ip AWS_PRIVATE_IP_001\n"
    # A JSON body sent with a form content type (curl -d) is still read as JSON.
    assert json.loads(
        _mask_body(b'{"t": "sg-0123456789abcdef0"}', "application/x-www-form-urlencoded")
    ) == {"t": "AWS_SECURITY_GROUP_001"}


# --- stream splitting --------------------------------------------------------------------

MAPPING = {
    b"AWS_EC2_001": b"i-1234567890abcdef0",
    b"AWS_S3_LOGS_BUCKET_002": b"my-app-logs",
    b"AWS_IAM_ROLE_1000": b"arn:aws:iam::123456789012:role/R",
}
STREAM = (
    b'{"text": "AWS_EC2_001 wrote to AWS_S3_LOGS_BUCKET_002 as AWS_IAM_ROLE_1000; '
    b'AWS_EC2_0011 is unknown, AAWS and AWS_ stay"}'
)


def _through_splitter(chunks: list[bytes]) -> bytes:
    splitter = StreamUnmasker()
    out = [unmask_bytes(splitter.feed(c), MAPPING) for c in chunks]
    out.append(unmask_bytes(splitter.flush(), MAPPING))
    return b"".join(out)


def test_every_single_split_point_unmasks_like_the_whole() -> None:
    whole = unmask_bytes(STREAM, MAPPING)
    assert b"i-1234567890abcdef0 wrote to my-app-logs" in whole
    assert b"AWS_EC2_0011 is unknown" in whole
    for i in range(len(STREAM) + 1):
        assert _through_splitter([STREAM[:i], STREAM[i:]]) == whole


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_property_any_chunking_unmasks_like_the_whole(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert _through_splitter(chunks) == unmask_bytes(STREAM, MAPPING)
    assert MASKED_ID_BYTES_RE.findall(STREAM)


# --- SSE re-chunking ---------------------------------------------------------------------


def _sse(deltas: list[str]) -> bytes:
    events = [
        {"type": "message_start", "message": {"id": "m"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
            for d in deltas
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def _replay(raw: bytes, cuts: list[int]) -> tuple[str, list[str]]:
    from kongmasker_dataplane.sse import SseRechunker

    rechunker = SseRechunker()
    points = [0, *sorted(cuts), len(raw)]
    out = b"".join(
        unmask_bytes(rechunker.feed(raw[a:b]), MAPPING) for a, b in itertools.pairwise(points)
    )
    out += unmask_bytes(rechunker.flush(), MAPPING)
    text, kinds = "", []
    for block in out.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                kinds.append(event["type"])
                if event["type"] == "content_block_delta":
                    text += event["delta"]["text"]
    return text, kinds


@settings(max_examples=150, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=9),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_property_sse_ids_split_across_deltas_and_chunks_are_unmasked(
    size: int, cuts: list[int]
) -> None:
    text = "see AWS_EC2_001, then AWS_S3_LOGS_BUCKET_002 and AWS_IAM_ROLE_1000 done AW"
    raw = _sse([text[i : i + size] for i in range(0, len(text), size)])
    got, kinds = _replay(raw, [c for c in cuts if c <= len(raw)])
    assert got == unmask_bytes(text.encode(), MAPPING).decode()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "content_block_stop"
