"""Plugin profiles (issue 13): what the operator renders for Kong under each profile is exactly
what that profile's plugin schema accepts, and a user's typo is refused before anything runs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT
from tests.unit.operator.operator_fakes import SECRETS, SPEC

from kongmasker.api.kongplugin import PROFILES, check_config
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import Component
from kongmasker.core.render import StackRef, render_stack
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit

REF = StackRef("default", "demo", "uid-1")


def _spec(profile: str, **kong: Any) -> StackSpec:
    raw = {**SPEC, "kong": {**SPEC.get("kong", {}), "plugin": {"profile": profile}, **kong}}
    return StackSpec.from_dict(raw)


def _plugin(spec: StackSpec) -> dict[str, Any]:
    doc = yaml.safe_load(render_stack(REF, spec, SECRETS, 20)[Component.KONG].config)
    plugins = doc["services"][0]["plugins"]
    assert len(plugins) == 1 and plugins[0]["name"] == "aws-masker"
    return dict(plugins[0]["config"])


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_rendered_config_passes_its_profiles_schema(profile: str) -> None:
    config = _plugin(_spec(profile))
    assert check_config(PROFILES[profile], config) == []
    assert set(config) <= set(PROFILES[profile].fields)


@pytest.mark.parametrize(
    ("config", "field", "why"),
    [
        ({"redis_hots": "x"}, "redis_hots", "unknown field"),
        ({"mapping_ttl": "soon"}, "mapping_ttl", "expected a number"),
        ({"mask_s3_buckets": "yes"}, "mask_s3_buckets", "expected a boolean"),
        ({"anthropic_api_key": "{vault://env/anthropic}"}, "anthropic_api_key", "referenceable"),
        ({"use_redis": 1}, "use_redis", "expected a boolean"),
    ],
)
def test_the_schema_check_refuses_what_kong_would(
    config: dict[str, Any], field: str, why: str
) -> None:
    problems = dict(check_config(PROFILES["mvp"], config))
    assert field in problems and why in problems[field]


def test_the_original_plugins_render_no_field_their_schema_lacks() -> None:
    mvp = _plugin(_spec("mvp"))
    # The first schema has no Redis field at all: Redis comes from the environment.
    assert not any(k.startswith("redis_") for k in mvp) and mvp["mapping_ttl"] == 604800
    ent = _plugin(_spec("enterprise2"))
    assert ent["redis_database"] == 0 and "redis_db" not in ent
    # Not referenceable in the original: the password goes by environment only.
    assert "redis_password" not in ent
    local = _plugin(_spec("local"))
    assert local["redis_password"] == "{vault://env/redis-password}"


@pytest.mark.parametrize("profile", ["mvp", "enterprise2"])
def test_env_wired_profiles_get_redis_and_the_upstream_key_in_kongs_environment(
    profile: str,
) -> None:
    env = dict(render_stack(REF, _spec(profile), SECRETS, 20)[Component.KONG].container.env)
    assert env["REDIS_HOST"] == "127.0.0.1" and env["REDIS_PORT"] == "6379"
    assert env["REDIS_DB"] == "0" and env["REDIS_PASSWORD"] == SECRETS["REDIS_PASSWORD"]
    assert ("ANTHROPIC_API_KEY" in env) is PROFILES[profile].upstream_key_env
    main_env = "REDIS_HOST; env REDIS_PORT; env REDIS_PASSWORD; env REDIS_DB"
    if PROFILES[profile].upstream_key_env:
        main_env += "; env ANTHROPIC_API_KEY"
    assert env["KONG_NGINX_MAIN_ENV"] == main_env


def test_user_config_merges_over_the_rendered_defaults() -> None:
    user = {"mapping_ttl": 3600, "log_masked_requests": True}
    plugin = {"profile": "enterprise2", "config": user}
    spec = StackSpec.from_dict({**SPEC, "kong": {"plugin": plugin}})
    config = _plugin(spec)
    assert config["mapping_ttl"] == 3600 and config["log_masked_requests"] is True
    assert config["redis_port"] == 6379


@pytest.mark.parametrize(
    ("plugin", "needle"),
    [
        ({"profile": "mvp", "config": {"redis_host": "r"}},
         "spec.kong.plugin.config.redis_host: unknown field for the aws-masker plugin's 'mvp'"),
        ({"profile": "local", "config": {"mapping_ttl": "1d"}},
         "spec.kong.plugin.config.mapping_ttl: expected an integer"),
        ({"profile": "kong2"}, "spec.kong.plugin.profile: 'kong2' is not one of"),
    ],
)  # fmt: skip
def test_a_config_typo_is_an_invalid_spec_naming_field_and_profile(
    plugin: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidSpec) as exc:
        StackSpec.from_dict({**SPEC, "kong": {"plugin": plugin}})
    assert needle in exc.value.message


def test_fail_open_is_refused_for_a_plugin_that_cannot_do_it() -> None:
    with pytest.raises(InvalidSpec, match="failSecure"):
        StackSpec.from_dict(
            {**SPEC, "kong": {"plugin": {"profile": "mvp"}, "masking": {"failSecure": False}}}
        )


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_kong_container_settings_for_every_profile(profile: str) -> None:
    kong = render_stack(REF, _spec(profile, maxBodySize="16m"), SECRETS, 20)[Component.KONG]
    env = dict(kong.container.env)
    assert kong.container.stop_signal == "SIGQUIT"
    assert env["KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE"] == "16m"
    assert env["KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE"] == "16m"
    assert env["KONG_NGINX_MAIN_WORKER_SHUTDOWN_TIMEOUT"] == "18s"
    for listener in ("KONG_PROXY_LISTEN", "KONG_ADMIN_LISTEN", "KONG_STATUS_LISTEN"):
        assert env[listener].endswith(" reuseport")
    # Host networking: the Admin API on loopback only.
    assert env["KONG_ADMIN_LISTEN"].startswith("127.0.0.1:")


def test_kong_body_limit_below_nginxs_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="maxBodySize"):
        StackSpec.from_dict({**SPEC, "kong": {"maxBodySize": "1m"}})


def test_crd_declares_the_profiles_and_the_model_defaults() -> None:
    crd = yaml.safe_load((REPO_ROOT / "crds/kongmaskerstack.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    kong = spec["properties"]["kong"]["properties"]
    plugin = kong["plugin"]["properties"]
    model = StackSpec.from_dict(SPEC).kong
    assert plugin["profile"]["enum"] == list(PROFILES)
    assert plugin["profile"]["default"] == model.plugin.profile
    assert plugin["name"]["default"] == model.plugin.name
    assert plugin["config"]["x-kubernetes-preserve-unknown-fields"] is True
    assert kong["maxBodySize"]["default"] == model.max_body_size
