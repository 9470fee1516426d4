from __future__ import annotations

import pytest
import yaml
from tests.unit.operator.operator_fakes import SECRETS, SPEC

from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import LABEL_SPEC_HASH, LABEL_STACK_UID, Component
from kongmasker.core.render import (
    KONG_CONFIG_PATH,
    NGINX_CONFIG_PATH,
    StackRef,
    endpoints,
    render_stack,
)

pytestmark = pytest.mark.unit


def test_kong_config_has_route_plugin_and_vault_reference(desired) -> None:  # type: ignore[no-untyped-def]
    kong = desired[Component.KONG]
    assert kong.config_path == KONG_CONFIG_PATH
    doc = yaml.safe_load(kong.config)
    service = doc["services"][0]
    assert doc["_format_version"] == "3.0"
    assert service["url"] == "http://127.0.0.1:18090"
    assert service["routes"][0]["paths"] == ["/v1"]
    plugin = service["plugins"][0]
    assert plugin["name"] == "aws-masker"
    assert plugin["config"]["redis_password"] == "{vault://env/redis-password}"
    assert plugin["config"]["redis_port"] == 6379 and plugin["config"]["fail_secure"] is True


def test_no_rendered_file_or_label_contains_a_secret(desired) -> None:  # type: ignore[no-untyped-def]
    for d in desired.values():
        blob = (d.config or b"").decode() + repr(dict(d.container.labels))
        for value in SECRETS.values():
            assert value not in blob


def test_secrets_reach_only_the_env_of_components_that_need_them(desired) -> None:  # type: ignore[no-untyped-def]
    env = {c: dict(d.container.env) for c, d in desired.items()}
    assert env[Component.REDIS]["REDIS_PASSWORD"] == "s3cret-redis"
    assert env[Component.KONG]["REDIS_PASSWORD"] == "s3cret-redis"
    assert "REDIS_PASSWORD" not in env[Component.NGINX]
    assert env[Component.BACKEND]["ANTHROPIC_API_KEY"] == "s3cret-upstream"
    assert "ANTHROPIC_API_KEY" not in env[Component.KONG]


def test_host_mode_wiring(desired) -> None:  # type: ignore[no-untyped-def]
    env = dict(desired[Component.BACKEND].container.env)
    assert env["KONG_PROXY_URL"] == "http://127.0.0.1:8085"  # backend -> nginx -> kong
    assert env["KONG_ADMIN_URL"] == "http://127.0.0.1:8001"
    assert (
        dict(desired[Component.KONG].container.env)["KONG_STATUS_LISTEN"]
        == "127.0.0.1:8100 reuseport"
    )
    nginx = desired[Component.NGINX]
    conf = nginx.config.decode()
    assert nginx.config_path == NGINX_CONFIG_PATH
    assert "listen 127.0.0.1:8085 reuseport;" in conf and "server 127.0.0.1:8000;" in conf
    assert "proxy_pass http://kong_status/status/ready;" in conf
    assert all(d.container.network_mode == "host" for d in desired.values())
    assert desired[Component.NGINX].container.stop_signal == "SIGQUIT"
    assert desired[Component.REDIS].container.volumes == {
        naming.redis_volume("default", "demo"): "/data"
    }


def test_bridge_mode_uses_container_names_and_publishes_ports(ref: StackRef) -> None:
    spec = StackSpec.from_dict({**SPEC, "network": {"mode": "bridge", "name": "kmnet"}})
    desired = render_stack(ref, spec, SECRETS, 20)
    kong = desired[Component.KONG].container
    assert kong.network_mode == "kmnet"
    assert kong.published_ports[8001] == ("127.0.0.1", 8001)
    assert dict(kong.env)["KONG_ADMIN_LISTEN"] == "0.0.0.0:8001 reuseport"
    assert (
        f"server {naming.container_name('default', 'demo', 'kong')}:8000;"
        in desired[Component.NGINX].config.decode()
    )
    assert yaml.safe_load(desired[Component.KONG].config)["services"][0]["plugins"][0]["config"][
        "redis_host"
    ] == naming.container_name("default", "demo", "redis")


def test_hash_changes_with_what_is_baked_in_and_only_for_that_component(ref: StackRef) -> None:
    base = render_stack(ref, StackSpec.from_dict(SPEC), SECRETS, 20)
    changed = render_stack(
        ref,
        StackSpec.from_dict({**SPEC, "nginx": {"image": "kongmasker/nginx:other"}}),
        SECRETS,
        20,
    )
    differs = {c for c in Component if base[c].spec_hash != changed[c].spec_hash}
    assert differs == {Component.NGINX}
    rotated = render_stack(ref, StackSpec.from_dict(SPEC), {**SECRETS, "REDIS_PASSWORD": "new"}, 20)
    differs = {c for c in Component if base[c].spec_hash != rotated[c].spec_hash}
    assert differs == {Component.REDIS, Component.KONG, Component.BACKEND}
    assert base[Component.KONG].container.labels[LABEL_SPEC_HASH] == base[Component.KONG].spec_hash
    assert base[Component.KONG].container.labels[LABEL_STACK_UID] == "uid-1"


def test_route_change_is_config_only(ref: StackRef) -> None:
    base = render_stack(ref, StackSpec.from_dict(SPEC), SECRETS, 20)
    other = render_stack(
        ref, StackSpec.from_dict({**SPEC, "kong": {"routePaths": ["/v1", "/v2"]}}), SECRETS, 20
    )
    assert base[Component.KONG].spec_hash == other[Component.KONG].spec_hash
    assert base[Component.KONG].config != other[Component.KONG].config


def test_user_env_cannot_override_wiring(ref: StackRef) -> None:
    raw = {
        **SPEC,
        "backend": {
            "env": [
                {"name": "KONG_PROXY_URL", "value": "http://evil"},
                {"name": "ANTHROPIC_MODEL", "value": "m"},
            ]
        },
    }
    env = dict(
        render_stack(ref, StackSpec.from_dict(raw), SECRETS, 20)[Component.BACKEND].container.env
    )
    assert env["KONG_PROXY_URL"] == "http://127.0.0.1:8085" and env["ANTHROPIC_MODEL"] == "m"


def test_endpoints_are_urls(spec: StackSpec) -> None:
    eps = endpoints(spec)
    assert eps["proxy"] == "http://127.0.0.1:8085"
    assert eps["backend"] == "http://127.0.0.1:3000"
    assert eps["kongAdmin"] == "http://127.0.0.1:8001"
