"""Pure renderers: the spec (plus resolved Secret values) becomes, per component, a
ContainerSpec and, for Kong and Nginx, a configuration file that can be applied live.

Secrets only ever go into container env. Kong's declarative config refers to the Redis
password as `{vault://env/redis-password}` (Kong's env vault, resolved from REDIS_PASSWORD)
only where the selected plugin profile declares that field referenceable; a plugin that reads
Redis from the environment gets REDIS_HOST/PORT/PASSWORD/DB there instead, so no rendered file
holds a secret.

Kong's plugin block holds only fields the profile's schema knows (api/kongplugin.py):
rendered defaults by role (Redis host/port/db/password, TTL, fail-secure), then the user's
`spec.kong.plugin.config` over them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from kongmasker.adapters.runtime import ContainerSpec
from kongmasker.api import naming
from kongmasker.api.kongplugin import check_config
from kongmasker.api.spec import ComponentSpec, StackSpec
from kongmasker.api.vocabulary import (
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    LABEL_SPEC_HASH,
    LABEL_STACK_NAME,
    LABEL_STACK_NAMESPACE,
    LABEL_STACK_UID,
    MANAGED_BY,
    PART_OF,
    START_ORDER,
    Component,
)
from kongmasker.errors import InvalidSpec

KONG_CONFIG_PATH = "/etc/kongmasker/kong.yml"
NGINX_CONFIG_PATH = "/etc/kongmasker/nginx.conf"
REDIS_PASSWORD_VAULT_REF = "{vault://env/redis-password}"
SERVICE_NAME = "claude-api-service"
ROUTE_NAME = "claude-api-route"

STOP_SIGNALS = {
    Component.REDIS: "SIGTERM",
    Component.KONG: "SIGQUIT",  # Kong's (nginx's) graceful stop; SIGTERM cuts requests
    Component.NGINX: "SIGQUIT",  # nginx's graceful shutdown
    Component.BACKEND: "SIGTERM",
}


@dataclass(frozen=True)
class StackRef:
    """Identity of the KongMaskerStack object a set of containers belongs to."""

    namespace: str
    name: str
    uid: str

    def container_name(self, component: Component) -> str:
        return naming.container_name(self.namespace, self.name, str(component))

    def redis_volume(self, spec: StackSpec) -> str:
        # Named after namespace/name, not the UID: a re-created stack finds its data again.
        return spec.redis.persistence.volume_name or naming.redis_volume(self.namespace, self.name)

    def stack_labels(self) -> dict[str, str]:
        """Labels that select every container of this stack incarnation."""
        return {LABEL_PART_OF: PART_OF, LABEL_STACK_UID: self.uid}

    def name_labels(self) -> dict[str, str]:
        """Labels that select containers of any incarnation of this namespace/name."""
        return {
            LABEL_PART_OF: PART_OF,
            LABEL_STACK_NAMESPACE: self.namespace,
            LABEL_STACK_NAME: self.name,
        }


def volume_labels(ref: StackRef) -> dict[str, str]:
    """Labels of a volume made for this stack: namespace/name (a re-created stack of the same
    namespace/name may use it again) and the uid of the incarnation that made it."""
    return {**ref.name_labels(), LABEL_STACK_UID: ref.uid}


@dataclass(frozen=True)
class Desired:
    """The desired state of one component."""

    component: Component
    container: ContainerSpec
    spec_hash: str
    config_path: str | None = None
    config: bytes | None = None
    """Live-applicable configuration (Kong declarative config, nginx.conf)."""


def render_stack(
    ref: StackRef, spec: StackSpec, secrets: Mapping[str, str], grace_seconds: int
) -> dict[Component, Desired]:
    """Desired state of every component, in start order.

    `secrets` maps env names (REDIS_PASSWORD, ANTHROPIC_API_KEY, BACKEND_API_KEY) to values.
    """
    net = _Net(ref, spec)
    grace = spec.stop_grace_period_seconds or grace_seconds
    kong_conf = render_kong_config(spec, net.peer(Component.REDIS)).encode()
    nginx_conf = render_nginx_config(spec, net).encode()
    parts: dict[Component, tuple[ComponentSpec, dict[str, str], dict[str, str], bytes | None]] = {
        Component.REDIS: (spec.redis, _redis_env(spec, net, secrets), {}, None),
        Component.KONG: (
            spec.kong,
            _kong_env(spec, net, secrets, grace),
            {KONG_CONFIG_PATH: ""},
            kong_conf,
        ),
        Component.NGINX: (
            spec.nginx,
            {"NGINX_PORT": str(spec.nginx.port)},
            {NGINX_CONFIG_PATH: ""},
            nginx_conf,
        ),
        Component.BACKEND: (spec.backend, _backend_env(spec, net, secrets, grace), {}, None),
    }
    out: dict[Component, Desired] = {}
    for comp in START_ORDER:
        cspec, env, config_paths, config = parts[comp]
        out[comp] = _desired(ref, spec, net, comp, cspec, env, grace, config_paths, config)
    return out


def _desired(
    ref: StackRef,
    spec: StackSpec,
    net: _Net,
    comp: Component,
    cspec: ComponentSpec,
    env: dict[str, str],
    grace: int,
    config_paths: dict[str, str],
    config: bytes | None,
) -> Desired:
    # User env first: the operator's own variables win, they wire the stack together.
    full_env = {**dict(cspec.env), **env}
    volumes = {ref.redis_volume(spec): "/data"} if comp is Component.REDIS else {}
    base = ContainerSpec(
        name=ref.container_name(comp),
        image=cspec.image,
        env=full_env,
        network_mode=net.mode_for_container(),
        published_ports=net.published(_ports(spec, comp)),
        volumes=volumes,
        stop_signal=STOP_SIGNALS[comp],
        stop_timeout=grace,
        nano_cpus=cspec.resources.nano_cpus,
        memory_bytes=cspec.resources.memory_bytes,
    )
    spec_hash = container_hash(base)
    labels = {
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_STACK_UID: ref.uid,
        LABEL_STACK_NAME: ref.name,
        LABEL_STACK_NAMESPACE: ref.namespace,
        LABEL_COMPONENT: str(comp),
        LABEL_SPEC_HASH: spec_hash,
    }
    path = next(iter(config_paths), None)
    files = {path: config} if path and config is not None else {}
    container = dataclasses.replace(base, labels=labels, files=files)
    return Desired(comp, container, spec_hash, path, config)


def container_hash(spec: ContainerSpec) -> str:
    """Stable hash of what is baked in at creation (files excluded: they apply live).

    The env includes Secret values, so rotating a Secret recreates the container; only a
    truncated digest of the whole blob is stored, never a value.
    """
    blob = {
        "image": spec.image,
        "env": sorted(spec.env.items()),
        "network": spec.network_mode,
        "ports": sorted((k, list(v)) for k, v in spec.published_ports.items()),
        "volumes": sorted(spec.volumes.items()),
        "stop": [spec.stop_signal, spec.stop_timeout],
        "limits": [spec.nano_cpus, spec.memory_bytes],
        "command": list(spec.command or ()),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def render_plugin_config(spec: StackSpec, redis_host: str) -> dict[str, Any]:
    """The aws-masker `config` block: only fields the selected profile's schema knows."""
    plugin = spec.kong.plugin
    profile = plugin.schema
    by_role: dict[str, Any] = {
        "host": redis_host,
        "port": spec.redis.port,
        "db": spec.redis.db,
        "ttl": spec.kong.mapping_ttl_seconds,
        "fail_secure": spec.kong.fail_secure,
    }
    rendered = {
        fieldname: by_role[role]
        for role, fieldname in profile.redis_fields.items()
        if role in by_role
    }
    password_field = profile.redis_fields.get("password")
    if (
        spec.redis.password is not None
        and password_field
        and profile.fields[password_field].referenceable
    ):
        rendered[password_field] = REDIS_PASSWORD_VAULT_REF
    if "max_body_bytes" in profile.fields:
        rendered["max_body_bytes"] = spec.kong.max_body_bytes
    merged = {**rendered, **dict(plugin.config)}
    problems = check_config(profile, merged)
    if problems:  # rendered defaults are valid by construction; this guards a schema edit
        key, why = problems[0]
        raise InvalidSpec(f"rendered aws-masker config.{key}: {why} ({profile.name!r} profile)")
    return merged


def render_kong_config(spec: StackSpec, redis_host: str) -> str:
    """Kong 3.x DB-less declarative configuration (YAML) with the aws-masker plugin."""
    doc = {
        "_format_version": "3.0",
        "services": [
            {
                "name": SERVICE_NAME,
                "url": spec.upstream.url,
                "routes": [
                    {"name": ROUTE_NAME, "paths": list(spec.kong.route_paths), "strip_path": False}
                ],
                "plugins": [
                    {
                        "name": spec.kong.plugin.name,
                        "config": render_plugin_config(spec, redis_host),
                    }
                ],
            }
        ],
    }
    header = "# Rendered by kongmasker-operator from the KongMaskerStack spec; do not edit.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)


def render_nginx_config(spec: StackSpec, net: _Net) -> str:
    """nginx.conf: /health (nginx itself), /health/ready (through to Kong), / -> Kong proxy."""
    kong = net.peer(Component.KONG)
    n = spec.nginx
    t = n.proxy_timeout_seconds
    return f"""# Rendered by kongmasker-operator from the KongMaskerStack spec; do not edit.
worker_processes auto;
pid /run/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  log_format timed '$remote_addr "$request" $status $body_bytes_sent rt=$request_time '
                   'urt=$upstream_response_time';
  access_log /dev/stdout timed;
  client_max_body_size {n.client_max_body_size};
  upstream kong_proxy {{ server {kong}:{spec.kong.proxy_port}; keepalive 32; }}
  upstream kong_status {{ server {kong}:{spec.kong.status_port}; }}
  server {{
    listen {net.bind}:{n.port} reuseport;
    location = /health {{
      access_log off;
      default_type application/json;
      return 200 '{{"status":"healthy"}}';
    }}
    location = /health/ready {{
      access_log off;
      proxy_pass http://kong_status/status/ready;
      proxy_connect_timeout 2s;
      proxy_read_timeout 5s;
    }}
    location / {{
      proxy_pass http://kong_proxy;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      # The request body is buffered so that a request sent on a keep-alive connection Kong
      # closed at that moment (Kong draining in a graceful restart) is sent again on a new one.
      proxy_request_buffering on;
      proxy_next_upstream error non_idempotent;
      proxy_next_upstream_tries 2;
      proxy_connect_timeout 5s;
      proxy_send_timeout {t}s;
      proxy_read_timeout {t}s;
    }}
  }}
}}
"""


class _Net:
    """Addressing: who binds where, and how components reach each other."""

    def __init__(self, ref: StackRef, spec: StackSpec) -> None:
        self.ref = ref
        self.spec = spec
        self.bridge = spec.network.mode == "bridge"
        self.bind = "0.0.0.0" if self.bridge else "127.0.0.1"

    def peer(self, comp: Component) -> str:
        """Host name other components use to reach `comp`."""
        return self.ref.container_name(comp) if self.bridge else "127.0.0.1"

    def mode_for_container(self) -> str:
        return str(self.spec.network.name) if self.bridge else "host"

    def published(self, ports: list[int]) -> dict[int, tuple[str, int]]:
        if not self.bridge:
            return {}
        return {p: (self.spec.docker_host.address, p) for p in ports}


def _ports(spec: StackSpec, comp: Component) -> list[int]:
    return {
        Component.REDIS: [spec.redis.port],
        Component.KONG: [spec.kong.proxy_port, spec.kong.admin_port, spec.kong.status_port],
        Component.NGINX: [spec.nginx.port],
        Component.BACKEND: [spec.backend.port],
    }[comp]


def _redis_env(spec: StackSpec, net: _Net, secrets: Mapping[str, str]) -> dict[str, str]:
    env = {"REDIS_PORT": str(spec.redis.port), "REDIS_BIND": net.bind, "REDIS_APPENDONLY": "yes"}
    if spec.redis.max_memory:
        env["REDIS_MAXMEMORY"] = spec.redis.max_memory
    if "REDIS_PASSWORD" in secrets:
        env["REDIS_PASSWORD"] = secrets["REDIS_PASSWORD"]
    return env


def _kong_env(spec: StackSpec, net: _Net, secrets: Mapping[str, str], grace: int) -> dict[str, str]:
    k = spec.kong
    profile = k.plugin.schema
    drain = max(1, grace - 2)  # a little under Docker's kill deadline so the exit is clean
    env = {
        "KONG_DATABASE": "off",
        "KONG_PLUGINS": f"bundled,{k.plugin.name}",
        # reuseport: a second Kong can bind the same ports during a graceful handover.
        # The Admin API binds where the operator reaches it and nowhere wider (docs/kong.md).
        "KONG_PROXY_LISTEN": f"{net.bind}:{k.proxy_port} reuseport",
        "KONG_ADMIN_LISTEN": f"{net.bind}:{k.admin_port} reuseport",
        "KONG_STATUS_LISTEN": f"{net.bind}:{k.status_port} reuseport",
        "KONG_DECLARATIVE_CONFIG": KONG_CONFIG_PATH,
        # Equal buffer and limit: the body is always in memory, so the plugin sees all of
        # it (Kong hands a plugin no body that spilled to a file); a larger one gets 413.
        "KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE": k.max_body_size,
        "KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE": k.max_body_size,
        # SIGQUIT drain: workers finish in-flight requests for this long, then exit.
        "KONG_NGINX_MAIN_WORKER_SHUTDOWN_TIMEOUT": f"{drain}s",
        "KONG_GRACE_SECONDS": str(drain),
        # The local gateway validates plugin blocks against this schema (real Kong ignores it).
        "KONGMASKER_PLUGIN_SCHEMA": profile.schema_json(),
    }
    if profile.redis_from == "env":
        env.update(
            {
                "REDIS_HOST": net.peer(Component.REDIS),
                "REDIS_PORT": str(spec.redis.port),
                "REDIS_DB": str(spec.redis.db),
            }
        )
    if "REDIS_PASSWORD" in secrets:
        env["REDIS_PASSWORD"] = secrets["REDIS_PASSWORD"]
    if profile.upstream_key_env and "ANTHROPIC_API_KEY" in secrets:
        env["ANTHROPIC_API_KEY"] = secrets["ANTHROPIC_API_KEY"]
    plugin_reads = [
        n
        for n in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "ANTHROPIC_API_KEY")
        if n in env and (profile.redis_from == "env" or n == "ANTHROPIC_API_KEY")
    ]
    if plugin_reads:
        # nginx hands its workers no environment unless main-context `env NAME;` names it;
        # Kong injects this as `env REDIS_HOST; env REDIS_PORT; ...` (docs/kong.md).
        env["KONG_NGINX_MAIN_ENV"] = "; env ".join(plugin_reads)
    return env


def _backend_env(
    spec: StackSpec, net: _Net, secrets: Mapping[str, str], grace: int
) -> dict[str, str]:
    env = {
        "BACKEND_LISTEN": f"{net.bind}:{spec.backend.port}",
        "KONG_PROXY_URL": f"http://{net.peer(Component.NGINX)}:{spec.nginx.port}",
        "KONG_ADMIN_URL": f"http://{net.peer(Component.KONG)}:{spec.kong.admin_port}",
        "REDIS_HOST": net.peer(Component.REDIS),
        "REDIS_PORT": str(spec.redis.port),
        "REDIS_DB": str(spec.redis.db),
        "BACKEND_GRACE_SECONDS": str(max(1, grace - 2)),
    }
    if spec.upstream.model:
        env["ANTHROPIC_MODEL"] = spec.upstream.model
    for key in ("REDIS_PASSWORD", "ANTHROPIC_API_KEY", "BACKEND_API_KEY"):
        if key in secrets:
            env[key] = secrets[key]
    return env


def endpoints(spec: StackSpec) -> dict[str, str]:
    """URLs users reach the stack at (status.endpoints)."""
    host = spec.docker_host.address
    return {
        "proxy": f"http://{host}:{spec.nginx.port}",
        "backend": f"http://{host}:{spec.backend.port}",
        "kongAdmin": f"http://{host}:{spec.kong.admin_port}",
        "kongStatus": f"http://{host}:{spec.kong.status_port}",
        "redis": f"redis://{host}:{spec.redis.port}",
    }
