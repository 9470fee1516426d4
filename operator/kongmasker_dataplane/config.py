"""Kong DB-less declarative configuration: parsing, validation, vault references, redaction.

The subset understood (Kong 3.x, `_format_version: "3.0"`):

    services:
      - name: claude-api-service
        url: https://api.anthropic.com          # or protocol/host/port/path
        routes:
          - name: claude
            paths: ["/v1"]
            strip_path: false                   # Kong's default is true
        plugins:
          - name: aws-masker
            config: {redis_host: ..., redis_password: "{vault://env/redis-password}"}
    routes:                                     # also top level, naming their service
      - {name: r, service: claude-api-service, paths: ["/v1"], methods: [POST]}
    plugins:                                    # global, or scoped with route:/service:
      - {name: aws-masker, route: r, config: {...}}

Plugin blocks are checked against the schema of the plugin build being stood in for, as
strictly as Kong checks them: the operator passes the selected profile's schema in
KONGMASKER_PLUGIN_SCHEMA (kongmasker/api/kongplugin.py); without it the gateway's own schema
(LOCAL_SCHEMA) applies. Unknown field, wrong type or out-of-range value: an error naming the
field. A vault reference is resolved only in a field the schema marks referenceable; elsewhere
it stays literal text, as in Kong. What a foreign schema allows but this gateway does not do
(another Kong plugin, a mask_* switch off, managed Redis...) is an error saying so, never a
silent difference. Profiles that read Redis from the environment (REDIS_HOST, REDIS_PORT,
REDIS_PASSWORD, REDIS_DB) are served that way, and ANTHROPIC_API_KEY becomes the upstream
x-api-key when the schema says the plugin authenticates.

Errors are `ConfigError` with Kong's field-level shape: `fields` is a nested dict keyed like the
input (`{"services": [{"url": "..."}]}`) and `flat` lists `services[0].url: ...` messages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "LOCAL_SCHEMA",
    "PLUGIN_NAME",
    "SCHEMA_ENV",
    "ConfigError",
    "GatewayConfig",
    "MaskerSettings",
    "PluginSchema",
    "Route",
    "Service",
    "load_config",
    "parse_body",
    "redact",
]

PLUGIN_NAME = "aws-masker"
_VAULT = re.compile(r"^\{vault://env/([A-Za-z0-9_-]+)(?:/[A-Za-z0-9_-]+)?\}$")
_SECRET_KEY = re.compile(r"(?i)password|secret|token|api[_-]?key|credential")

# Kong fields accepted and ignored (they change nothing this gateway models).
_SERVICE_EXTRA = {
    "id",
    "tags",
    "retries",
    "connect_timeout",
    "write_timeout",
    "read_timeout",
    "enabled",
    "tls_verify",
    "tls_verify_depth",
    "ca_certificates",
    "client_certificate",
}
_ROUTE_EXTRA = {
    "id",
    "tags",
    "protocols",
    "preserve_host",
    "regex_priority",
    "https_redirect_status_code",
    "request_buffering",
    "response_buffering",
    "path_handling",
    "hosts",
    "methods",
    "headers",
    "snis",
    "sources",
    "destinations",
    "service",
}
_TOP_EXTRA = {"_format_version", "_transform", "_comment", "consumers", "upstreams", "certificates"}


class ConfigError(ValueError):
    """An invalid declarative configuration, with Kong-style field-level details."""

    def __init__(self, errors: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(self.flat))

    @property
    def flat(self) -> list[str]:
        """`services[0].url: message` lines."""
        return [f"{_path_str(path)}: {msg}" for path, msg in self.errors]

    @property
    def fields(self) -> dict[str, Any]:
        """Errors nested like the input (Kong's `fields`)."""
        root: dict[str, Any] = {}
        for path, msg in self.errors:
            node: Any = root
            for i, key in enumerate(path):
                last = i == len(path) - 1
                k = str(key)
                if last:
                    node[k] = msg
                else:
                    node = node.setdefault(k, {})
        return root


def _path_str(path: tuple[str | int, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out or "(root)"


@dataclass(frozen=True)
class MaskerSettings:
    """The aws-masker plugin's configuration (defaults as in the plugin's schema)."""

    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: str | None = None
    redis_db: int = 0
    redis_timeout: float = 2.0
    mapping_ttl: int = 604800
    fail_secure: bool = True
    mask_request_body: bool = True
    mask_query: bool = True
    unmask_response: bool = True
    max_body_bytes: int = 8 * 1024 * 1024
    upstream_api_key: str | None = field(default=None, repr=False)
    """Sent upstream as x-api-key (profiles whose plugin authenticates to the upstream)."""


@dataclass(frozen=True)
class Route:
    """One route: path prefixes and whether the matched prefix is stripped."""

    name: str
    paths: tuple[str, ...]
    strip_path: bool = True
    methods: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    masker: MaskerSettings | None = None
    """A route-scoped aws-masker (wins over the service's and the global one, as in Kong)."""

    def accepts(self, method: str, host: str) -> bool:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return (not self.methods or method.upper() in self.methods) and (
            not self.hosts or host in self.hosts
        )


@dataclass(frozen=True)
class Service:
    """An upstream service and the routes that lead to it."""

    name: str
    scheme: str
    host: str
    port: int
    path: str
    routes: tuple[Route, ...]
    masker: MaskerSettings | None = None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class GatewayConfig:
    """A validated configuration, ready to serve."""

    services: tuple[Service, ...]
    raw: dict[str, Any] = field(repr=False)
    hash: str = ""

    def match(
        self, path: str, method: str = "GET", host: str = ""
    ) -> tuple[Service, Route, str] | None:
        """(service, route, matched prefix) of the longest route path that prefixes `path`,
        among routes whose methods and hosts (when set) accept the request."""
        best: tuple[Service, Route, str] | None = None
        for svc in self.services:
            for route in svc.routes:
                if not route.accepts(method, host):
                    continue
                for prefix in route.paths:
                    if _prefix_match(path, prefix) and (best is None or len(prefix) > len(best[2])):
                        best = (svc, route, prefix)
        return best

    def redis_settings(self) -> list[MaskerSettings]:
        """The distinct masker settings in use."""
        found = [s.masker for s in self.services] + [
            r.masker for s in self.services for r in s.routes
        ]
        return list(dict.fromkeys(m for m in found if m is not None))


def _prefix_match(path: str, prefix: str) -> bool:
    return path.startswith(prefix)


def upstream_path(service: Service, route: Route, prefix: str, path: str) -> str:
    """Kong's path joining: strip the matched prefix if asked, then append to the service path."""
    rest = path[len(prefix) :] if route.strip_path else path
    base = service.path or "/"
    if not rest:
        return base
    if base.endswith("/"):
        return base + rest.lstrip("/")
    return base + (rest if rest.startswith("/") else "/" + rest)


# --- parsing -----------------------------------------------------------------------------


def parse_body(body: bytes, content_type: str = "") -> dict[str, Any]:
    """The declarative config from a POST /config body: JSON, YAML text, or JSON/form
    `{"config": "<yaml or json string>"}`. Raises ConfigError when it is not a mapping."""
    text = body.decode("utf-8", errors="strict") if body else ""
    data: Any
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([((), f"not valid JSON or YAML: {exc}")]) from None
    if isinstance(data, dict) and set(data) <= {"config"} and isinstance(data.get("config"), str):
        return parse_body(data["config"].encode())
    if not isinstance(data, dict):
        raise ConfigError([((), "expected a declarative configuration (a mapping)")])
    return data


@dataclass(frozen=True)
class PluginSchema:
    """The `config` schema of the aws-masker build this gateway stands in for, and its wiring."""

    profile: str
    fields: dict[str, dict[str, Any]]
    redis_from: str = "config"
    redis_fields: dict[str, str] = field(default_factory=dict)
    upstream_key_env: bool = False

    @classmethod
    def from_env(cls, env: Any) -> PluginSchema:
        """KONGMASKER_PLUGIN_SCHEMA (JSON, rendered by the operator) or LOCAL_SCHEMA."""
        text = env.get(SCHEMA_ENV)
        if not text:
            return LOCAL_SCHEMA
        raw = json.loads(text)
        return cls(
            profile=str(raw["profile"]),
            fields={str(k): dict(v) for k, v in raw["fields"].items()},
            redis_from=str(raw.get("redis_from", "config")),
            redis_fields={str(k): str(v) for k, v in (raw.get("redis_fields") or {}).items()},
            upstream_key_env=bool(raw.get("upstream_key_env", False)),
        )


SCHEMA_ENV = "KONGMASKER_PLUGIN_SCHEMA"
# This gateway's own plugin (profile "local" in kongmasker/api/kongplugin.py; a unit test keeps
# the two equal).
LOCAL_SCHEMA = PluginSchema(
    profile="local",
    fields={
        "redis_host": {"type": "string", "default": "127.0.0.1"},
        "redis_port": {"type": "integer", "default": 6379, "between": [1, 65535]},
        "redis_password": {"type": "string", "referenceable": True},
        "redis_db": {"type": "integer", "default": 0, "between": [0, 1000000]},
        "redis_timeout": {"type": "number", "default": 2.0},
        "mapping_ttl": {"type": "integer", "default": 604800, "between": [1, 1000000000]},
        "fail_secure": {"type": "boolean", "default": True},
        "mask_request_body": {"type": "boolean", "default": True},
        "mask_query": {"type": "boolean", "default": True},
        "unmask_response": {"type": "boolean", "default": True},
        "max_body_bytes": {"type": "integer", "default": 8 * 1024 * 1024},
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
)

# Values a foreign schema allows that this gateway does not implement: refused, by name.
_NOT_IMPLEMENTED: dict[str, tuple[Any, str]] = {
    "mask_ec2_instances": (False, "it masks every identifier type"),
    "mask_s3_buckets": (False, "it masks every identifier type"),
    "mask_rds_instances": (False, "it masks every identifier type"),
    "mask_private_ips": (False, "it masks every identifier type"),
    "use_redis": (False, "it always keeps mappings in Redis"),
    "redis_type": ("managed", "only traditional (self-hosted) Redis"),
    "redis_ssl_enabled": (True, "no TLS to Redis"),
    "redis_cluster_mode": (True, "no Redis Cluster"),
}
# Kong's bundled plugins this gateway knows of but does not run.
_KONG_PLUGINS = {
    "correlation-id", "response-transformer", "request-transformer", "rate-limiting",
    "cors", "key-auth", "prometheus", "file-log", "http-log", "ip-restriction", "acl",
}  # fmt: skip

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def load_config(
    data: dict[str, Any], environ: dict[str, str] | None = None, schema: PluginSchema | None = None
) -> GatewayConfig:
    """Validate `data` and build a GatewayConfig; vault references resolve from `environ`;
    plugin blocks are checked against `schema` (default: from `environ`)."""
    env = os.environ if environ is None else environ
    schema = schema or PluginSchema.from_env(env)
    errors: list[tuple[tuple[str | int, ...], str]] = []
    fmt = data.get("_format_version")
    if fmt is None or str(fmt) not in ("1.1", "2.1", "3.0"):
        errors.append((("_format_version",), 'required, one of "1.1", "2.1", "3.0"'))
    for key in data:
        if key not in _TOP_EXTRA and key not in ("services", "plugins", "routes"):
            errors.append(((key,), "unknown field"))
    ctx = _Ctx(env, schema, errors)
    global_masker: MaskerSettings | None = None
    by_route: dict[str, MaskerSettings | None] = {}
    by_service: dict[str, MaskerSettings | None] = {}
    for i, plugin in enumerate(_list(data, "plugins", (), errors)):
        path = ("plugins", i)
        m = _plugin(plugin, path, ctx)
        if not isinstance(plugin, dict):
            continue
        route_ref, svc_ref = _ref(plugin.get("route")), _ref(plugin.get("service"))
        if route_ref:
            by_route[route_ref] = m
        elif svc_ref:
            by_service[svc_ref] = m
        elif m is not None:
            global_masker = m
    top_routes: dict[str, list[Any]] = {}
    for i, r in enumerate(_list(data, "routes", (), errors)):
        svc_ref = _ref(r.get("service")) if isinstance(r, dict) else None
        if not svc_ref:
            errors.append((("routes", i, "service"), "required field missing"))
            continue
        top_routes.setdefault(svc_ref, []).append((("routes", i), r))
    services = []
    names: set[str] = set()
    for i, svc in enumerate(_list(data, "services", (), errors)):
        name = svc.get("name") if isinstance(svc, dict) else None
        built = _service(
            svc,
            ("services", i),
            ctx,
            by_service.get(str(name), global_masker),
            top_routes.pop(str(name), []),
            by_route,
        )
        if built is not None:
            if built.name in names:
                errors.append((("services", i, "name"), f"duplicate service name {built.name!r}"))
            names.add(built.name)
            services.append(built)
    for svc_ref, routes in top_routes.items():
        for path, _r in routes:
            errors.append(((*path, "service"), f"no service named {svc_ref!r}"))
    known_routes = {r.name for s in services for r in s.routes}
    for i, plugin in enumerate(data.get("plugins") or []):
        ref = _ref(plugin.get("route")) if isinstance(plugin, dict) else None
        if ref and ref not in known_routes:
            errors.append((("plugins", i, "route"), f"no route named {ref!r}"))
    if errors:
        raise ConfigError(errors)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return GatewayConfig(tuple(services), data, hashlib.md5(canonical.encode()).hexdigest())


@dataclass
class _Ctx:
    env: Any
    schema: PluginSchema
    errors: list[Any]


def _ref(value: Any) -> str | None:
    """A foreign key in a declarative file: a name, or `{name: ...}` / `{id: ...}`."""
    if isinstance(value, dict):
        value = value.get("name") or value.get("id")
    return str(value) if isinstance(value, str) and value else None


def _list(
    obj: dict[str, Any], key: str, path: tuple[str | int, ...], errors: list[Any]
) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(((*path, key), "expected an array"))
        return []
    return value


def _service(
    svc: Any,
    path: tuple[str | int, ...],
    ctx: _Ctx,
    inherited: MaskerSettings | None,
    top_routes: list[tuple[tuple[str | int, ...], Any]],
    by_route: dict[str, MaskerSettings | None],
) -> Service | None:
    errors = ctx.errors
    if not isinstance(svc, dict):
        errors.append((path, "expected a record"))
        return None
    n_errors = len(errors)
    for key in svc:
        if key not in _SERVICE_EXTRA and key not in {
            "name",
            "url",
            "protocol",
            "host",
            "port",
            "path",
            "routes",
            "plugins",
        }:
            errors.append(((*path, key), "unknown field"))
    name = svc.get("name")
    if not isinstance(name, str) or not name:
        errors.append(((*path, "name"), "required field missing"))
        name = ""
    scheme, host, port, base = _service_target(svc, path, errors)
    masker = inherited
    for j, plugin in enumerate(_list(svc, "plugins", path, errors)):
        m = _plugin(plugin, (*path, "plugins", j), ctx)
        if m is not None:
            masker = m
    nested = [((*path, "routes", j), r) for j, r in enumerate(_list(svc, "routes", path, errors))]
    routes = [_route(r, rpath, ctx, by_route) for rpath, r in nested + top_routes]
    if len(errors) > n_errors:
        return None
    return Service(name, scheme, host, port, base, tuple(r for r in routes if r), masker)


def _service_target(
    svc: dict[str, Any], path: tuple[str | int, ...], errors: list[Any]
) -> tuple[str, str, int, str]:
    if "url" in svc:
        url = svc["url"]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(((*path, "url"), "must be an http(s) URL with a host"))
            return "http", "", 0, "/"
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            errors.append(((*path, "url"), "invalid port"))
            return "http", "", 0, "/"
        return parts.scheme, parts.hostname, port, parts.path or "/"
    scheme = svc.get("protocol", "http")
    host = svc.get("host")
    if scheme not in ("http", "https"):
        errors.append(((*path, "protocol"), "expected one of: http, https"))
    if not isinstance(host, str) or not host:
        errors.append(((*path, "host"), "required field missing (or give url)"))
        host = ""
    port = svc.get("port", 443 if scheme == "https" else 80)
    if not isinstance(port, int) or not 0 < port < 65536:
        errors.append(((*path, "port"), "value should be between 0 and 65535"))
        port = 0
    base = svc.get("path") or "/"
    if not isinstance(base, str) or not base.startswith("/"):
        errors.append(((*path, "path"), "should start with: /"))
        base = "/"
    return str(scheme), host, port, base


def _route(
    r: Any, path: tuple[str | int, ...], ctx: _Ctx, by_route: dict[str, MaskerSettings | None]
) -> Route | None:
    errors = ctx.errors
    if not isinstance(r, dict):
        errors.append((path, "expected a record"))
        return None
    for key in r:
        if key not in _ROUTE_EXTRA and key not in {"name", "paths", "strip_path", "plugins"}:
            errors.append(((*path, key), "unknown field"))
    name = str(r.get("name") or "")
    masker = by_route.get(name) if name else None
    for j, plugin in enumerate(_list(r, "plugins", path, errors)):
        m = _plugin(plugin, (*path, "plugins", j), ctx)
        if m is not None:
            masker = m
    paths = r.get("paths")
    if not isinstance(paths, list) or not paths:
        errors.append(((*path, "paths"), "must set at least one path"))
        return None
    bad = [p for p in paths if not isinstance(p, str) or not p.startswith("/")]
    if bad:
        errors.append(((*path, "paths"), "each path should start with: /"))
        return None
    strip = r.get("strip_path", True)
    if not isinstance(strip, bool):
        errors.append(((*path, "strip_path"), "expected a boolean"))
        return None
    methods = _strings(r, "methods", path, errors)
    hosts = _strings(r, "hosts", path, errors)
    return Route(name, tuple(paths), strip, tuple(m.upper() for m in methods), tuple(hosts), masker)


def _strings(
    r: dict[str, Any], key: str, path: tuple[str | int, ...], errors: list[Any]
) -> list[str]:
    value = r.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(((*path, key), "expected an array of strings"))
        return []
    return value


def _plugin(plugin: Any, path: tuple[str | int, ...], ctx: _Ctx) -> MaskerSettings | None:
    errors = ctx.errors
    if not isinstance(plugin, dict):
        errors.append((path, "expected a record"))
        return None
    name = plugin.get("name")
    if name != PLUGIN_NAME:
        if name in _KONG_PLUGINS:
            why = f"plugin '{name}' is not implemented by the local gateway (only {PLUGIN_NAME})"
        else:
            why = f"plugin '{name}' not enabled; add it to 'plugins'"
        errors.append(((*path, "name"), why))
        return None
    for key in plugin:
        if key not in {"name", "config", "enabled", "route", "service", "tags", "id",
                       "protocols", "instance_name"}:  # fmt: skip
            errors.append(((*path, key), "unknown field"))
    conf = plugin.get("config") or {}
    if not isinstance(conf, dict):
        errors.append(((*path, "config"), "expected a record"))
        return None
    settings = _masker_settings(conf, (*path, "config"), ctx)
    if plugin.get("enabled") is False:
        return None
    return settings


def _masker_settings(
    conf: dict[str, Any], path: tuple[str | int, ...], ctx: _Ctx
) -> MaskerSettings | None:
    schema, errors, env = ctx.schema, ctx.errors, ctx.env
    values: dict[str, Any] = {}
    n_errors = len(errors)
    for key, raw in conf.items():
        fdef = schema.fields.get(key)
        if fdef is None:
            errors.append(((*path, key), f"unknown field (plugin schema {schema.profile!r})"))
            continue
        value = raw
        if fdef.get("referenceable") and isinstance(raw, str) and raw.startswith("{vault://"):
            value = _resolve_vault(raw, (*path, key), env, errors)
            if value is None:
                continue
        if value is None:
            continue  # null: the default applies
        kind = str(fdef["type"])
        if (isinstance(value, bool) and kind != "boolean") or not isinstance(value, _TYPES[kind]):
            errors.append(((*path, key), f"expected {_article(kind)}"))
            continue
        if fdef.get("one_of") and value not in fdef["one_of"]:
            errors.append(((*path, key), "expected one of: " + ", ".join(fdef["one_of"])))
            continue
        between = fdef.get("between")
        if between and not between[0] <= value <= between[1]:
            errors.append(((*path, key), f"value should be between {between[0]} and {between[1]}"))
            continue
        off = _NOT_IMPLEMENTED.get(key)
        if off is not None and value == off[0]:
            errors.append(
                ((*path, key), f"{value!r} is not implemented by the local gateway: {off[1]}")
            )
            continue
        values[key] = value
    if len(errors) > n_errors:
        return None
    return _settings_for(schema, values, env)


def _settings_for(schema: PluginSchema, values: dict[str, Any], env: Any) -> MaskerSettings:
    """MaskerSettings from validated field values and, where the plugin reads them there, the
    environment."""

    def field_of(role: str, default: Any) -> Any:
        name = schema.redis_fields.get(role)
        if name is None:
            return default
        return values.get(name, schema.fields[name].get("default", default))

    if schema.redis_from == "env":
        # As the original plugins' masker_ngx_re.lua: the connection comes from the env.
        redis: dict[str, Any] = {
            "redis_host": env.get("REDIS_HOST") or "redis",
            "redis_port": int(env.get("REDIS_PORT") or 6379),
            "redis_password": env.get("REDIS_PASSWORD") or None,
            "redis_db": int(env.get("REDIS_DB") or 0),
        }
    else:
        redis = {
            "redis_host": field_of("host", "127.0.0.1"),
            "redis_port": field_of("port", 6379),
            "redis_password": field_of("password", None),
            "redis_db": field_of("db", 0),
        }
    key = values.get("anthropic_api_key") or (
        env.get("ANTHROPIC_API_KEY") if schema.upstream_key_env else None
    )
    own: dict[str, Any] = {k: v for k, v in values.items() if k in _LOCAL_ONLY}
    return MaskerSettings(
        **redis,
        **own,
        mapping_ttl=int(field_of("ttl", 604800)),
        fail_secure=bool(field_of("fail_secure", True)),
        upstream_api_key=key or None,
    )


_LOCAL_ONLY = {"redis_timeout", "mask_request_body", "mask_query", "unmask_response",
               "max_body_bytes"}  # fmt: skip


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _resolve_vault(value: Any, path: tuple[str | int, ...], env: Any, errors: list[Any]) -> Any:
    """Kong's env vault: `{vault://env/redis-password}` reads REDIS_PASSWORD."""
    m = _VAULT.match(value)
    if m is None:
        errors.append((path, "only {vault://env/<name>} references are supported"))
        return None
    var = m.group(1).upper().replace("-", "_")
    if var not in env:
        errors.append((path, f"vault reference: environment variable {var} is not set"))
        return None
    return env[var]


def redact(data: Any) -> Any:
    """A copy of a config with secret-looking literal values replaced; vault references stay
    (they name where the secret is, not the secret)."""
    if isinstance(data, dict):
        return {
            k: (
                "<redacted>"
                if _SECRET_KEY.search(str(k)) and isinstance(v, str) and v and not _VAULT.match(v)
                else redact(v)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data
