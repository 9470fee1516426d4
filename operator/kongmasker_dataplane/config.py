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
    plugins: []                                 # global plugins (aws-masker applies to all)

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
    "PLUGIN_NAME",
    "ConfigError",
    "GatewayConfig",
    "MaskerSettings",
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


@dataclass(frozen=True)
class Route:
    """One route: path prefixes and whether the matched prefix is stripped."""

    name: str
    paths: tuple[str, ...]
    strip_path: bool = True


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

    def match(self, path: str) -> tuple[Service, Route, str] | None:
        """(service, route, matched prefix) of the longest route path that prefixes `path`."""
        best: tuple[Service, Route, str] | None = None
        for svc in self.services:
            for route in svc.routes:
                for prefix in route.paths:
                    if _prefix_match(path, prefix) and (best is None or len(prefix) > len(best[2])):
                        best = (svc, route, prefix)
        return best

    def redis_settings(self) -> list[MaskerSettings]:
        """The distinct masker settings in use."""
        return list(dict.fromkeys(s.masker for s in self.services if s.masker is not None))


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


def load_config(data: dict[str, Any], environ: dict[str, str] | None = None) -> GatewayConfig:
    """Validate `data` and build a GatewayConfig; vault references resolve from `environ`."""
    env = os.environ if environ is None else environ
    errors: list[tuple[tuple[str | int, ...], str]] = []
    fmt = data.get("_format_version")
    if fmt is None or str(fmt) not in ("1.1", "2.1", "3.0"):
        errors.append((("_format_version",), 'required, one of "1.1", "2.1", "3.0"'))
    for key in data:
        if key not in _TOP_EXTRA and key not in ("services", "plugins", "routes"):
            errors.append(((key,), "unknown field"))
    global_masker: MaskerSettings | None = None
    for i, plugin in enumerate(_list(data, "plugins", (), errors)):
        m = _plugin(plugin, ("plugins", i), env, errors)
        if m is not None:
            global_masker = m
    services = []
    names: set[str] = set()
    for i, svc in enumerate(_list(data, "services", (), errors)):
        built = _service(svc, ("services", i), env, errors, global_masker)
        if built is not None:
            if built.name in names:
                errors.append((("services", i, "name"), f"duplicate service name {built.name!r}"))
            names.add(built.name)
            services.append(built)
    if data.get("routes"):
        errors.append((("routes",), "top-level routes are not supported; nest them in services"))
    if errors:
        raise ConfigError(errors)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return GatewayConfig(tuple(services), data, hashlib.md5(canonical.encode()).hexdigest())


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
    env: Any,
    errors: list[Any],
    global_masker: MaskerSettings | None,
) -> Service | None:
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
    routes = [
        _route(r, (*path, "routes", j), errors)
        for j, r in enumerate(_list(svc, "routes", path, errors))
    ]
    masker = global_masker
    for j, plugin in enumerate(_list(svc, "plugins", path, errors)):
        m = _plugin(plugin, (*path, "plugins", j), env, errors)
        if m is not None:
            masker = m
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


def _route(r: Any, path: tuple[str | int, ...], errors: list[Any]) -> Route | None:
    if not isinstance(r, dict):
        errors.append((path, "expected a record"))
        return None
    for key in r:
        if key not in _ROUTE_EXTRA and key not in {"name", "paths", "strip_path", "plugins"}:
            errors.append(((*path, key), "unknown field"))
    if r.get("plugins"):
        errors.append(((*path, "plugins"), "route-level plugins are not supported"))
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
    return Route(str(r.get("name") or ""), tuple(paths), strip)


def _plugin(
    plugin: Any, path: tuple[str | int, ...], env: Any, errors: list[Any]
) -> MaskerSettings | None:
    if not isinstance(plugin, dict):
        errors.append((path, "expected a record"))
        return None
    name = plugin.get("name")
    if name != PLUGIN_NAME:
        errors.append(((*path, "name"), f"plugin '{name}' not enabled; add it to 'plugins'"))
        return None
    if plugin.get("enabled") is False:
        return None
    conf = plugin.get("config") or {}
    if not isinstance(conf, dict):
        errors.append(((*path, "config"), "expected a record"))
        return None
    return _masker_settings(conf, (*path, "config"), env, errors)


_MASKER_TYPES: dict[str, type | tuple[type, ...]] = {
    "redis_host": str,
    "redis_port": int,
    "redis_password": (str, type(None)),
    "redis_db": int,
    "redis_timeout": (int, float),
    "mapping_ttl": int,
    "fail_secure": bool,
    "mask_request_body": bool,
    "mask_query": bool,
    "unmask_response": bool,
    "max_body_bytes": int,
}


def _masker_settings(
    conf: dict[str, Any], path: tuple[str | int, ...], env: Any, errors: list[Any]
) -> MaskerSettings | None:
    values: dict[str, Any] = {}
    n_errors = len(errors)
    for key, raw in conf.items():
        if key not in _MASKER_TYPES:
            errors.append(((*path, key), "unknown field"))
            continue
        value = _resolve_vault(raw, (*path, key), env, errors)
        expected = _MASKER_TYPES[key]
        if isinstance(value, str) and expected in (int, (int, float)) and value.isdigit():
            value = int(value)
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            errors.append(((*path, key), f"expected {_type_name(expected)}"))
            continue
        values[key] = value
    for key, lo, hi in (
        ("redis_port", 1, 65535),
        ("redis_db", 0, 10**6),
        ("mapping_ttl", 1, 10**9),
    ):
        if key in values and not lo <= values[key] <= hi:
            errors.append(((*path, key), f"value should be between {lo} and {hi}"))
    if len(errors) > n_errors:
        return None
    return MaskerSettings(**values)


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", bool: "a boolean", float: "a number"}
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join(names.get(x, "null") for x in ts)


def _resolve_vault(value: Any, path: tuple[str | int, ...], env: Any, errors: list[Any]) -> Any:
    """Kong's env vault: `{vault://env/redis-password}` reads REDIS_PASSWORD."""
    if not isinstance(value, str) or not value.startswith("{vault://"):
        return value
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
