"""The local gateway as strict as Kong under each plugin profile (issue 13): the schema the
operator passes in KONGMASKER_PLUGIN_SCHEMA decides which plugin fields exist, their types and
where a vault reference is resolved; files shaped like the original project's kong.yml load
where they use only what the gateway implements, and name what they use beyond that."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kongmasker.api.kongplugin import PROFILES
from kongmasker_dataplane.config import (
    LOCAL_SCHEMA,
    SCHEMA_ENV,
    ConfigError,
    PluginSchema,
    load_config,
)

pytestmark = pytest.mark.unit


def _env(profile: str, **extra: str) -> dict[str, str]:
    return {SCHEMA_ENV: PROFILES[profile].schema_json(), **extra}


def _doc(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": "ai",
                "url": "http://127.0.0.1:18090",
                "routes": [{"name": "ai", "paths": ["/v1"], "strip_path": False}],
                "plugins": [{"name": "aws-masker", "config": config}],
            }
        ],
    }


def test_the_gateways_own_schema_is_the_operators_local_profile() -> None:
    operator_side = json.loads(PROFILES["local"].schema_json())
    assert PluginSchema.from_env({SCHEMA_ENV: PROFILES["local"].schema_json()}) == PluginSchema(
        profile="local",
        fields=operator_side["fields"],
        redis_from="config",
        redis_fields=operator_side["redis_fields"],
    )
    assert LOCAL_SCHEMA.redis_fields == operator_side["redis_fields"]
    for name, fdef in operator_side["fields"].items():
        own = LOCAL_SCHEMA.fields[name]
        assert own["type"] == fdef["type"] and bool(own.get("referenceable")) == bool(
            fdef["referenceable"]
        ), name
    assert set(LOCAL_SCHEMA.fields) == set(operator_side["fields"])


@pytest.mark.parametrize(
    ("profile", "config", "field", "why"),
    [
        ("mvp", {"redis_host": "r"}, "redis_host", "unknown field (plugin schema 'mvp')"),
        ("mvp", {"mapping_ttl": "1d"}, "mapping_ttl", "expected a number"),
        ("enterprise2", {"redis_port": 6.5}, "redis_port", "expected an integer"),
        ("enterprise2", {"redis_type": "cloud"}, "redis_type", "expected one of"),
        ("enterprise2", {"redis_type": "managed"}, "redis_type", "not implemented"),
        ("mvp", {"mask_s3_buckets": False}, "mask_s3_buckets", "not implemented"),
        ("local", {"redis_db": "0"}, "redis_db", "expected an integer"),
    ],
)
def test_a_field_the_profile_refuses_is_an_error_naming_it(
    profile: str, config: dict[str, Any], field: str, why: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_doc(config), _env(profile))
    message = err.value.fields["services"]["0"]["plugins"]["0"]["config"][field]
    assert why in message


def test_vault_references_resolve_only_in_referenceable_fields() -> None:
    ref = "{vault://env/redis-password}"
    local = load_config(_doc({"redis_password": ref}), _env("local", REDIS_PASSWORD="pw"))
    assert local.services[0].masker is not None
    assert local.services[0].masker.redis_password == "pw"
    # enterprise2's redis_password is not referenceable: Kong keeps the text as it is, and so
    # does this gateway (its connection comes from REDIS_PASSWORD anyway).
    env = _env("enterprise2", REDIS_PASSWORD="pw", ANTHROPIC_API_KEY="k")
    config = load_config(_doc({"anthropic_api_key": ref}), env)
    masker = config.services[0].masker
    assert masker is not None and masker.upstream_api_key == ref


def test_env_wired_profiles_take_redis_and_the_key_from_the_environment() -> None:
    env = _env(
        "enterprise2",
        REDIS_HOST="10.9.9.9",
        REDIS_PORT="6390",
        REDIS_PASSWORD="pw",
        REDIS_DB="3",
        ANTHROPIC_API_KEY="upstream-key",
    )
    masker = load_config(_doc({"redis_host": "ignored", "mapping_ttl": 60}), env).services[0].masker
    assert masker is not None
    assert (masker.redis_host, masker.redis_port, masker.redis_password, masker.redis_db) == (
        "10.9.9.9",
        6390,
        "pw",
        3,
    )
    assert masker.mapping_ttl == 60 and masker.fail_secure is True
    assert masker.upstream_api_key == "upstream-key"
    assert "upstream-key" not in repr(masker)
    mvp = load_config(_doc({}), _env("mvp", ANTHROPIC_API_KEY="k")).services[0].masker
    assert mvp is not None and mvp.upstream_api_key is None and mvp.redis_host == "redis"


# The shape of the original project's kong.yml (written here, not copied): top-level routes
# naming their service, route-scoped plugins, methods, Kong fields with no effect here.
ORIGINAL_SHAPE: dict[str, Any] = {
    "_format_version": "3.0",
    "_transform": True,
    "services": [
        {
            "name": "claude-api-service",
            "url": "http://127.0.0.1:18090",
            "retries": 3,
            "connect_timeout": 5000,
            "tags": ["claude"],
        }
    ],
    "routes": [
        {
            "name": "claude-proxy",
            "service": "claude-api-service",
            "paths": ["/v1"],
            "methods": ["POST"],
            "strip_path": False,
            "preserve_host": False,
            "request_buffering": True,
        },
        {"name": "open", "service": "claude-api-service", "paths": ["/open"]},
    ],
    "plugins": [
        {
            "name": "aws-masker",
            "route": "claude-proxy",
            "config": {"use_redis": True, "mask_ec2_instances": True, "mapping_ttl": 86400},
        }
    ],
}


def test_a_file_shaped_like_the_originals_loads_under_its_profile() -> None:
    config = load_config(json.loads(json.dumps(ORIGINAL_SHAPE)), _env("mvp"))
    matched = config.match("/v1/messages", "POST", "127.0.0.1:8000")
    assert matched is not None
    _svc, route, _prefix = matched
    assert route.name == "claude-proxy" and route.masker is not None
    assert route.masker.mapping_ttl == 86400
    assert config.match("/v1/messages", "GET") is None  # methods: [POST]
    open_route = config.match("/open/x", "GET")
    assert open_route is not None and open_route[1].masker is None  # the plugin is route-scoped


def test_what_the_gateway_does_not_implement_is_named() -> None:
    doc = json.loads(json.dumps(ORIGINAL_SHAPE))
    doc["plugins"].append({"name": "correlation-id", "config": {"header_name": "X-Id"}})
    doc["plugins"].append({"name": "aws-masker", "route": "nowhere", "config": {}})
    with pytest.raises(ConfigError) as err:
        load_config(doc, _env("mvp"))
    assert err.value.fields["plugins"]["1"]["name"] == (
        "plugin 'correlation-id' is not implemented by the local gateway (only aws-masker)"
    )
    assert err.value.fields["plugins"]["2"]["route"] == "no route named 'nowhere'"
