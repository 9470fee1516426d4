"""aws-masker plugin profiles: which plugin build the Kong image carries, its config schema, and
how Redis and the upstream key reach it.

    spec.kong.plugin {name, profile, config}
        │
        ├─ PROFILES[profile].fields   the schema (type, default, referenceable) as the plugin's
        │                             own schema.lua declares it
        ├─ .redis_from                "config": Redis in plugin fields; "env": REDIS_HOST/PORT/
        │                             PASSWORD/DB in Kong's environment (the original's plugins)
        └─ .upstream_key_env          ANTHROPIC_API_KEY in Kong's environment when the plugin
                                      authenticates to the upstream itself

core/render.py renders only fields the selected schema knows and merges the user's `config`
over them; `check_config` is the gate that refuses a typo or a wrong type before anything
starts. The same schema travels to the local gateway (KONGMASKER_PLUGIN_SCHEMA) so that the
stand-in refuses exactly what the selected plugin would refuse.

Profiles (schema.lua of public repository logi96/kong-aws-masking-mvp, read, not copied):
  local        the local gateway's own plugin (kongmasker_dataplane)
  mvp          kong/plugins/aws-masker/schema.lua: no Redis fields, Redis from the environment
  enterprise2  nginx-kong-claude-enterprise2/kong/plugins/aws-masker/schema.lua: adds
               redis_* fields; still connects from the environment and needs ANTHROPIC_API_KEY
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_PROFILE",
    "PLUGIN_NAME",
    "PROFILES",
    "FieldDef",
    "PluginProfile",
    "check_config",
    "is_vault_reference",
]

PLUGIN_NAME = "aws-masker"
DEFAULT_PROFILE = "local"
_VAULT = re.compile(r"^\{vault://[^}]+\}$")

# Kong's schema types; `number` takes integers too, `integer` does not take 1.5.
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class FieldDef:
    """One field of a plugin's `config` record, as schema.lua declares it."""

    type: str
    default: Any = None
    referenceable: bool = False
    one_of: tuple[Any, ...] = ()
    between: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "referenceable": self.referenceable}
        if self.default is not None:
            out["default"] = self.default
        if self.one_of:
            out["one_of"] = list(self.one_of)
        if self.between:
            out["between"] = list(self.between)
        return out


@dataclass(frozen=True)
class PluginProfile:
    """One plugin build: its schema and its wiring."""

    name: str
    source: str
    fields: Mapping[str, FieldDef]
    redis_from: str
    """"config" (fields below) or "env" (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB)."""
    redis_fields: Mapping[str, str] = field(default_factory=dict)
    """Role (host, port, db, password, ttl, fail_secure) -> the field that carries it."""
    upstream_key_env: bool = False
    """The plugin reads ANTHROPIC_API_KEY from Kong's environment."""

    def schema_json(self) -> str:
        """The schema as the local gateway reads it (KONGMASKER_PLUGIN_SCHEMA)."""
        return json.dumps(
            {
                "profile": self.name,
                "plugin": PLUGIN_NAME,
                "redis_from": self.redis_from,
                "redis_fields": dict(self.redis_fields),
                "upstream_key_env": self.upstream_key_env,
                "fields": {k: f.to_json() for k, f in self.fields.items()},
            },
            sort_keys=True,
            separators=(",", ":"),
        )


_B = "boolean"
_MVP_FIELDS: dict[str, FieldDef] = {
    "mask_ec2_instances": FieldDef(_B, True),
    "mask_s3_buckets": FieldDef(_B, True),
    "mask_rds_instances": FieldDef(_B, True),
    "mask_private_ips": FieldDef(_B, True),
    "preserve_structure": FieldDef(_B, True),
    "log_masked_requests": FieldDef(_B, False),
    "anthropic_api_key": FieldDef("string"),
    "use_redis": FieldDef(_B, True),
    "mapping_ttl": FieldDef("number", 604800),
    "max_entries": FieldDef("number", 10000),
}

PROFILES: dict[str, PluginProfile] = {
    "local": PluginProfile(
        name="local",
        source="kongmasker_dataplane (this repository's local gateway)",
        fields={
            "redis_host": FieldDef("string", "127.0.0.1"),
            "redis_port": FieldDef("integer", 6379, between=(1, 65535)),
            "redis_password": FieldDef("string", referenceable=True),
            "redis_db": FieldDef("integer", 0, between=(0, 1000000)),
            "redis_timeout": FieldDef("number", 2.0),
            "mapping_ttl": FieldDef("integer", 604800, between=(1, 1000000000)),
            "fail_secure": FieldDef(_B, True),
            "mask_request_body": FieldDef(_B, True),
            "mask_query": FieldDef(_B, True),
            "unmask_response": FieldDef(_B, True),
            "max_body_bytes": FieldDef("integer", 8 * 1024 * 1024),
        },
        redis_from="config",
        redis_fields={
            "host": "redis_host",
            "port": "redis_port",
            "db": "redis_db",
            "password": "redis_password",
            "ttl": "mapping_ttl",
            "fail_secure": "fail_secure",
        },
    ),
    "mvp": PluginProfile(
        name="mvp",
        source="logi96/kong-aws-masking-mvp kong/plugins/aws-masker/schema.lua",
        fields=_MVP_FIELDS,
        redis_from="env",
        redis_fields={"ttl": "mapping_ttl"},
    ),
    "enterprise2": PluginProfile(
        name="enterprise2",
        source=(
            "logi96/kong-aws-masking-mvp "
            "nginx-kong-claude-enterprise2/kong/plugins/aws-masker/schema.lua"
        ),
        fields={
            **_MVP_FIELDS,
            "redis_type": FieldDef("string", "traditional", one_of=("traditional", "managed")),
            "redis_host": FieldDef("string", "localhost"),
            "redis_port": FieldDef("integer", 6379),
            "redis_password": FieldDef("string"),
            "redis_database": FieldDef("integer", 0),
            "redis_ssl_enabled": FieldDef(_B, False),
            "redis_ssl_verify": FieldDef(_B, False),
            "redis_auth_token": FieldDef("string"),
            "redis_user": FieldDef("string"),
            "redis_cluster_mode": FieldDef(_B, False),
            "redis_cluster_endpoint": FieldDef("string"),
        },
        # The handler reads these fields, but its connection (masker_ngx_re.lua) takes the
        # environment: both are rendered so that they agree.
        redis_from="env",
        redis_fields={
            "host": "redis_host",
            "port": "redis_port",
            "db": "redis_database",
            "ttl": "mapping_ttl",
        },
        upstream_key_env=True,
    ),
}


def is_vault_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(_VAULT.match(value))


def check_config(profile: PluginProfile, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, problem) for every field of `config` that `profile`'s schema refuses: unknown,
    wrong type, out of range, or a vault reference where the field is not referenceable (Kong
    would pass it through as literal text). Empty when the plugin would accept it."""
    problems: list[tuple[str, str]] = []
    for key, value in config.items():
        fdef = profile.fields.get(key)
        if fdef is None:
            problems.append((key, "unknown field"))
            continue
        if value is None:
            continue  # Kong takes null as "unset": the default applies
        if is_vault_reference(value):
            if not fdef.referenceable:
                problems.append((key, "is not referenceable: a vault reference stays literal text"))
            continue
        types = _TYPES[fdef.type]
        if (isinstance(value, bool) and fdef.type != "boolean") or not isinstance(value, types):
            problems.append((key, f"expected {_article(fdef.type)}"))
            continue
        if fdef.one_of and value not in fdef.one_of:
            shown = ", ".join(str(v) for v in fdef.one_of)
            problems.append((key, f"expected one of: {shown}"))
        if fdef.between and isinstance(value, int | float):
            lo, hi = fdef.between
            if lo <= value <= hi:
                continue
            problems.append((key, f"value should be between {lo} and {hi}"))
    return problems


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
