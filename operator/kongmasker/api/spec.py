"""Typed model of `KongMaskerStack.spec`, parsed from the (already defaulted) object the API
server returns. Defaults here mirror the CRD's so a partial dict parses the same way.

    >>> spec = StackSpec.from_dict({"upstream": {"url": "http://127.0.0.1:18090"}})
    >>> spec.kong.proxy_port, spec.network.mode
    (8000, 'host')
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kongmasker.api.kongplugin import (
    DEFAULT_PROFILE,
    PLUGIN_NAME,
    PROFILES,
    PluginProfile,
    check_config,
)
from kongmasker.errors import InvalidSpec

DEFAULT_UPSTREAM = "https://api.anthropic.com"
DEFAULT_ALERT_COOLDOWN_SECONDS = 900
"""The original deployment's 15 minutes between two alerts of one cause."""
MAX_ALERT_COOLDOWN_SECONDS = 604800
SEVERITIES = ("warning", "critical")
RESTART_STRATEGIES = ("Recreate", "Graceful")
"""spec.restartStrategy: Recreate stops everything and starts it again (downtime); Graceful
hands over component by component with no request failing (core/graceful.py)."""
"""Alert severities, lowest first."""
DEFAULT_KONG_MAX_BODY = "10m"
"""Kong's request body limit and buffer; equal to Nginx's default clientMaxBodySize."""
DEFAULT_IMAGES = {
    "redis": "kongmasker/redis:dev",
    "kong": "kongmasker/gateway:dev",
    "nginx": "kongmasker/nginx:dev",
    "backend": "kongmasker/backend:dev",
}


@dataclass(frozen=True)
class SecretKeyRef:
    """A key in a Secret of the stack's namespace."""

    name: str
    key: str

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, default_key: str) -> SecretKeyRef | None:
        if not raw or not raw.get("name"):
            return None
        return cls(name=str(raw["name"]), key=str(raw.get("key") or default_key))


@dataclass(frozen=True)
class ResourcesSpec:
    """Container limits as Kubernetes quantities (cpu "500m", memory "256Mi")."""

    cpu: str | None = None
    memory: str | None = None

    @property
    def nano_cpus(self) -> int | None:
        return parse_cpu(self.cpu) if self.cpu else None

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory(self.memory) if self.memory else None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ResourcesSpec:
        raw = raw or {}
        return cls(cpu=_opt_str(raw.get("cpu")), memory=_opt_str(raw.get("memory")))


@dataclass(frozen=True)
class ComponentSpec:
    """What every component has: image, extra env and limits."""

    image: str
    env: tuple[tuple[str, str], ...] = ()
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)

    @staticmethod
    def common(raw: Mapping[str, Any], component: str) -> dict[str, Any]:
        env = tuple((str(e["name"]), str(e.get("value", ""))) for e in raw.get("env") or ())
        return {
            "image": str(raw.get("image") or DEFAULT_IMAGES[component]),
            "env": env,
            "resources": ResourcesSpec.from_dict(raw.get("resources")),
        }


@dataclass(frozen=True)
class PersistenceSpec:
    volume_name: str | None = None
    """Docker volume for /data; default km-<namespace>-<name>-redis."""

    delete_on_stack_delete: bool = False
    """Remove the volume when the stack is deleted (kept by default)."""


@dataclass(frozen=True)
class RedisSpec(ComponentSpec):
    port: int = 6379
    db: int = 0
    max_memory: str | None = None
    password: SecretKeyRef | None = None
    persistence: PersistenceSpec = field(default_factory=PersistenceSpec)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RedisSpec:
        raw = raw or {}
        pers = raw.get("persistence") or {}
        return cls(
            **ComponentSpec.common(raw, "redis"),
            port=int(raw.get("port", 6379)),
            db=int(raw.get("db", 0)),
            max_memory=_opt_str(raw.get("maxMemory")),
            password=SecretKeyRef.from_dict(raw.get("passwordSecretRef"), "password"),
            persistence=PersistenceSpec(
                volume_name=_opt_str(pers.get("volumeName")),
                delete_on_stack_delete=bool(pers.get("deleteOnStackDelete", False)),
            ),
        )


@dataclass(frozen=True)
class PluginSpec:
    """spec.kong.plugin: which aws-masker build the Kong image carries (api/kongplugin.py)
    and the user's config fields, merged over what the operator renders."""

    name: str = PLUGIN_NAME
    profile: str = DEFAULT_PROFILE
    config: tuple[tuple[str, Any], ...] = ()

    @property
    def schema(self) -> PluginProfile:
        return PROFILES[self.profile]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PluginSpec:
        raw = raw or {}
        config = raw.get("config") or {}
        if not isinstance(config, Mapping):
            raise InvalidSpec("spec.kong.plugin.config must be an object of plugin fields")
        return cls(
            name=str(raw.get("name") or PLUGIN_NAME),
            profile=str(raw.get("profile") or DEFAULT_PROFILE),
            config=tuple(sorted(config.items())),
        )

    def validate(self) -> None:
        """Refuse, before anything starts, what the selected plugin would refuse at load."""
        if self.name != PLUGIN_NAME:
            raise InvalidSpec(f"spec.kong.plugin.name: {self.name!r} is not {PLUGIN_NAME!r}")
        if self.profile not in PROFILES:
            raise InvalidSpec(
                f"spec.kong.plugin.profile: {self.profile!r} is not one of " + ", ".join(PROFILES)
            )
        for key, value in self.config:
            if isinstance(value, str) and len(value) > MAX_PLUGIN_STRING:
                raise InvalidSpec(
                    f"spec.kong.plugin.config.{key}: {len(value)} characters, at most "
                    f"{MAX_PLUGIN_STRING} (the spec must fit in the object's annotations)"
                )
        problems = check_config(self.schema, dict(self.config))
        if problems:
            key, why = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            fields = ", ".join(sorted(self.schema.fields))
            raise InvalidSpec(
                f"spec.kong.plugin.config.{key}: {why} for the {self.name} plugin's "
                f"{self.profile!r} profile{more}; its fields: {fields}"
            )


@dataclass(frozen=True)
class KongSpec(ComponentSpec):
    proxy_port: int = 8000
    admin_port: int = 8001
    status_port: int = 8100
    route_paths: tuple[str, ...] = ("/v1",)
    mapping_ttl_seconds: int = 604800
    fail_secure: bool = True
    plugin: PluginSpec = field(default_factory=PluginSpec)
    max_body_size: str = DEFAULT_KONG_MAX_BODY
    """nginx client_max_body_size and client_body_buffer_size of Kong: the same value, so the
    plugin always sees the whole body in memory; a larger body is refused with 413."""

    @property
    def max_body_bytes(self) -> int:
        return parse_nginx_size(self.max_body_size)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> KongSpec:
        raw = raw or {}
        masking = raw.get("masking") or {}
        return cls(
            **ComponentSpec.common(raw, "kong"),
            proxy_port=int(raw.get("proxyPort", 8000)),
            admin_port=int(raw.get("adminPort", 8001)),
            status_port=int(raw.get("statusPort", 8100)),
            route_paths=tuple(raw.get("routePaths") or ("/v1",)),
            mapping_ttl_seconds=int(masking.get("mappingTtlSeconds", 604800)),
            fail_secure=bool(masking.get("failSecure", True)),
            plugin=PluginSpec.from_dict(raw.get("plugin")),
            max_body_size=str(raw.get("maxBodySize") or DEFAULT_KONG_MAX_BODY),
        )


@dataclass(frozen=True)
class NginxSpec(ComponentSpec):
    port: int = 8085
    proxy_timeout_seconds: int = 60
    client_max_body_size: str = "10m"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> NginxSpec:
        raw = raw or {}
        return cls(
            **ComponentSpec.common(raw, "nginx"),
            port=int(raw.get("port", 8085)),
            proxy_timeout_seconds=int(raw.get("proxyTimeoutSeconds", 60)),
            client_max_body_size=str(raw.get("clientMaxBodySize", "10m")),
        )


@dataclass(frozen=True)
class BackendSpec(ComponentSpec):
    port: int = 3000
    api_key: SecretKeyRef | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> BackendSpec:
        raw = raw or {}
        return cls(
            **ComponentSpec.common(raw, "backend"),
            port=int(raw.get("port", 3000)),
            api_key=SecretKeyRef.from_dict(raw.get("apiKeySecretRef"), "api-key"),
        )


@dataclass(frozen=True)
class UpstreamSpec:
    url: str
    api_key: SecretKeyRef | None = None
    model: str | None = None


@dataclass(frozen=True)
class DockerHostSpec:
    url: str = ""
    """Engine URL (unix:// or tcp://); empty means the operator's default."""

    address: str = "127.0.0.1"
    """Address at which the stack's host ports are reached (endpoints, probes)."""

    tls: SecretKeyRef | None = None
    """Secret with ca.pem, cert.pem and key.pem for a TCP engine (key field unused)."""


@dataclass(frozen=True)
class NetworkSpec:
    mode: str = "host"
    """`host`: components share the host's network on 127.0.0.1 ports; `bridge`: a
    user-defined bridge network, ports published on the host address."""

    name: str | None = None


@dataclass(frozen=True)
class WebhookSpec:
    """`spec.alerts.webhook`: the stack's own alert webhook. The URL (it usually embeds a
    token) lives only in the Secret; the spec names the Secret and key."""

    secret: SecretKeyRef
    cooldown_seconds: int = DEFAULT_ALERT_COOLDOWN_SECONDS
    """Seconds a repeat of one alert (stack, reason, component) is held back; 0: none."""

    min_severity: str = "warning"
    """Lowest severity sent: warning (everything) or critical."""

    @classmethod
    def from_dict(cls, raw: Any) -> WebhookSpec | None:
        where = "spec.alerts.webhook"
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise InvalidSpec(f"{where} must be an object with secretRef: {{name: <Secret>}}")
        ref = raw.get("secretRef")
        if not isinstance(ref, Mapping) or not ref.get("name"):
            raise InvalidSpec(
                f"{where}.secretRef.name is required: name the Secret of the stack's namespace "
                "whose key (default 'url') holds the webhook URL, or remove spec.alerts.webhook"
            )
        secret = SecretKeyRef(name=str(ref["name"]), key=str(ref.get("key") or "url"))
        cooldown = raw.get("cooldownSeconds", DEFAULT_ALERT_COOLDOWN_SECONDS)
        if isinstance(cooldown, bool) or not isinstance(cooldown, int):
            raise InvalidSpec(
                f"{where}.cooldownSeconds: {cooldown!r} is not a whole number of seconds; "
                f"use e.g. {DEFAULT_ALERT_COOLDOWN_SECONDS}"
            )
        if not 0 <= cooldown <= MAX_ALERT_COOLDOWN_SECONDS:
            raise InvalidSpec(
                f"{where}.cooldownSeconds: {cooldown} is out of range; use 0 (send every "
                f"repeat) up to {MAX_ALERT_COOLDOWN_SECONDS} (a week)"
            )
        severity = raw.get("minSeverity") or "warning"
        if severity not in SEVERITIES:
            raise InvalidSpec(
                f"{where}.minSeverity: {severity!r} is not one of {', '.join(SEVERITIES)}; "
                "leave it out to send every alert"
            )
        return cls(secret=secret, cooldown_seconds=cooldown, min_severity=str(severity))


@dataclass(frozen=True)
class AlertsSpec:
    """`spec.alerts`: where the health watch's alerts about this stack go."""

    webhook: WebhookSpec | None = None
    """None: the operator-wide webhook (KONGMASKER_MONITOR_WEBHOOK_URL), if any."""

    @classmethod
    def from_dict(cls, raw: Any) -> AlertsSpec:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidSpec("spec.alerts must be an object, e.g. {webhook: {secretRef: ...}}")
        return cls(webhook=WebhookSpec.from_dict(raw.get("webhook")))


# spec.monitoring fields: (group, camelCase key) -> (attribute, minimum, maximum). Bounds keep
# a typo from turning the watch into a busy loop or switching it off for a day.
_MONITORING_FIELDS: dict[tuple[str, str], tuple[str, float, float]] = {
    ("probes", "periodSeconds"): ("probe_period", 1, 3600),
    ("probes", "timeoutSeconds"): ("probe_timeout", 0.1, 60),
    ("probes", "failureThreshold"): ("failure_threshold", 1, 100),
    ("probes", "startupGraceSeconds"): ("startup_grace", 0, 3600),
    ("recovery", "restartBudget"): ("restart_budget", 1, 1000),
    ("recovery", "budgetWindowSeconds"): ("budget_window", 1, 86400),
    ("recovery", "backoffSeconds"): ("backoff", 0, 3600),
    ("recovery", "maxBackoffSeconds"): ("max_backoff", 0, 86400),
    ("canary", "periodSeconds"): ("canary_period", 0, 86400),
}


@dataclass(frozen=True)
class MonitoringSpec:
    """`spec.monitoring`: this stack's health-watch tunables. Every field is optional; an
    unset one takes the operator's KONGMASKER_MONITOR_* / KONGMASKER_HEALTH_* setting."""

    probe_period: float | None = None
    probe_timeout: float | None = None
    failure_threshold: int | None = None
    startup_grace: float | None = None
    restart_budget: int | None = None
    budget_window: float | None = None
    backoff: float | None = None
    max_backoff: float | None = None
    canary_period: float | None = None
    """0 switches the canary off for this stack."""

    @classmethod
    def from_dict(cls, raw: Any) -> MonitoringSpec:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidSpec(
                "spec.monitoring must be an object, e.g. {probes: {periodSeconds: 10}}"
            )
        for group in ("probes", "recovery", "canary"):
            section = raw.get(group)
            if section is not None and not isinstance(section, Mapping):
                raise InvalidSpec(f"spec.monitoring.{group} must be an object")
        values: dict[str, float | int] = {}
        for (group, key), (attr, low, high) in _MONITORING_FIELDS.items():
            section = raw.get(group)
            if section is None or key not in section:
                continue
            where, value = f"spec.monitoring.{group}.{key}", section[key]
            whole = attr in ("failure_threshold", "restart_budget")
            kinds = (int,) if whole else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds):
                kind = "a whole number" if whole else "a number of seconds"
                raise InvalidSpec(f"{where}: {value!r} is not {kind}; remove it for the default")
            if not low <= value <= high:
                raise InvalidSpec(f"{where}: {value} is out of range; use {low:g} to {high:g}")
            values[attr] = value
        spec = cls(**values)  # type: ignore[arg-type]
        if None not in (spec.backoff, spec.max_backoff) and spec.max_backoff < spec.backoff:  # type: ignore[operator]
            raise InvalidSpec(
                "spec.monitoring.recovery.maxBackoffSeconds is below backoffSeconds; raise it "
                "or lower backoffSeconds"
            )
        return spec


@dataclass(frozen=True)
class StackSpec:
    """The whole desired state of one stack."""

    upstream: UpstreamSpec
    redis: RedisSpec = field(default_factory=lambda: RedisSpec.from_dict({}))
    kong: KongSpec = field(default_factory=lambda: KongSpec.from_dict({}))
    nginx: NginxSpec = field(default_factory=lambda: NginxSpec.from_dict({}))
    backend: BackendSpec = field(default_factory=lambda: BackendSpec.from_dict({}))
    docker_host: DockerHostSpec = field(default_factory=DockerHostSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    paused: bool = False
    hibernated: bool = False
    """Stopped on purpose (containers removed, data volume kept) until false again."""
    stop_grace_period_seconds: int | None = None
    restart_strategy: str = "Recreate"
    alerts: AlertsSpec = field(default_factory=AlertsSpec)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, values: bool = True) -> StackSpec:
        """Parse a spec dict (camelCase, as stored by the API server). `values=False` skips
        the limits on values that only Docker needs (images, env, resources, volume name), for
        the delete of a stack stored before the CRD had them: what runs must still be stopped."""
        upstream = raw.get("upstream") or {}
        dh = raw.get("dockerHost") or {}
        net = raw.get("network") or {}
        spec = cls(
            upstream=UpstreamSpec(
                url=str(upstream.get("url") or DEFAULT_UPSTREAM),
                api_key=SecretKeyRef.from_dict(upstream.get("apiKeySecretRef"), "api-key"),
                model=_opt_str(upstream.get("model")),
            ),
            redis=RedisSpec.from_dict(raw.get("redis")),
            kong=KongSpec.from_dict(raw.get("kong")),
            nginx=NginxSpec.from_dict(raw.get("nginx")),
            backend=BackendSpec.from_dict(raw.get("backend")),
            docker_host=DockerHostSpec(
                url=str(dh.get("url") or ""),
                address=str(dh.get("address") or "127.0.0.1"),
                tls=SecretKeyRef.from_dict(dh.get("tlsSecretRef"), "ca.pem"),
            ),
            network=NetworkSpec(
                mode=str(net.get("mode") or "host"), name=_opt_str(net.get("name"))
            ),
            paused=bool(raw.get("paused", False)),
            hibernated=bool(raw.get("hibernated", False)),
            stop_grace_period_seconds=_opt_int(raw.get("stopGracePeriodSeconds")),
            restart_strategy=str(raw.get("restartStrategy") or "Recreate"),
            alerts=AlertsSpec.from_dict(raw.get("alerts")),
            monitoring=MonitoringSpec.from_dict(raw.get("monitoring")),
        )
        spec.validate(values=values)
        return spec

    def host_ports(self) -> dict[str, int]:
        """Every host port the stack binds, by a readable name."""
        return {
            "redis.port": self.redis.port,
            "kong.proxyPort": self.kong.proxy_port,
            "kong.adminPort": self.kong.admin_port,
            "kong.statusPort": self.kong.status_port,
            "nginx.port": self.nginx.port,
            "backend.port": self.backend.port,
        }

    def components(self) -> dict[str, ComponentSpec]:
        """The four components by their spec field name."""
        return {
            "redis": self.redis,
            "kong": self.kong,
            "nginx": self.nginx,
            "backend": self.backend,
        }

    def validate(self, *, values: bool = True) -> None:
        """The semantic checks CEL also makes, repeated so that core never trusts its input."""
        if not is_host_address(self.docker_host.address):
            raise InvalidSpec(
                f"spec.dockerHost.address: {self.docker_host.address!r} is not a host name or "
                "an IP address; give one without scheme, port, path or whitespace"
            )
        if values:
            self._validate_values()
        ports = self.host_ports()
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if not 1 <= port <= 65535:
                raise InvalidSpec(f"spec.{name}: {port} is not a valid port")
            if port in seen:
                raise InvalidSpec(f"spec.{name}: port {port} is also used by spec.{seen[port]}")
            seen[port] = name
        if self.network.mode not in ("host", "bridge"):
            raise InvalidSpec(f"spec.network.mode: {self.network.mode!r} is not host or bridge")
        if self.network.mode == "bridge" and not self.network.name:
            raise InvalidSpec("spec.network.name is required when spec.network.mode is bridge")
        if self.restart_strategy not in RESTART_STRATEGIES:
            raise InvalidSpec(
                f"spec.restartStrategy: {self.restart_strategy!r} is not one of "
                + " or ".join(RESTART_STRATEGIES)
            )
        if not re.match(r"^https?://", self.upstream.url):
            raise InvalidSpec("spec.upstream.url must start with http:// or https://")
        for comp in (self.redis, self.kong, self.nginx, self.backend):
            _ = comp.resources.nano_cpus, comp.resources.memory_bytes
        self.kong.plugin.validate()
        if not self.kong.fail_secure and "fail_secure" not in self.kong.plugin.schema.redis_fields:
            raise InvalidSpec(
                f"spec.kong.masking.failSecure: false is not possible with the "
                f"{self.kong.plugin.profile!r} plugin profile (it always refuses when Redis is "
                "down); remove the field or choose the 'local' profile"
            )
        if self.kong.max_body_bytes < parse_nginx_size(self.nginx.client_max_body_size):
            raise InvalidSpec(
                f"spec.kong.maxBodySize ({self.kong.max_body_size}) is below "
                f"spec.nginx.clientMaxBodySize ({self.nginx.client_max_body_size}): Kong would "
                "refuse bodies Nginx lets through; raise kong.maxBodySize"
            )

    def _validate_values(self) -> None:
        """The CRD's static limits on values that reach Docker or a socket (its patterns and
        bounds), so that an object stored before they existed, or written around the CRD, is
        refused with the field's name instead of a DockerError."""
        for name, comp in self.components().items():
            if len(comp.image) > MAX_IMAGE_LENGTH or not _IMAGE.fullmatch(comp.image):
                raise InvalidSpec(
                    f"spec.{name}.image: {comp.image[:80]!r} is not a Docker image reference "
                    f"([host/]path[:tag][@digest], at most {MAX_IMAGE_LENGTH} characters)"
                )
            for key, value in comp.env:
                if not _ENV_NAME.fullmatch(key) or len(key) > MAX_ENV_NAME_LENGTH:
                    raise InvalidSpec(
                        f"spec.{name}.env: {key[:80]!r} is not an environment variable name "
                        f"(letters, digits and _, not starting with a digit, at most "
                        f"{MAX_ENV_NAME_LENGTH})"
                    )
                if "\x00" in value:
                    raise InvalidSpec(
                        f"spec.{name}.env[{key}].value contains a NUL byte, which Docker refuses"
                    )
            cpu = comp.resources.nano_cpus
            if cpu is not None and cpu < MIN_NANO_CPUS:
                raise InvalidSpec(
                    f"spec.{name}.resources.cpu: {comp.resources.cpu} is below 10m (0.01 CPU), "
                    "Docker's minimum"
                )
            memory = comp.resources.memory_bytes
            if memory is not None and memory < MIN_MEMORY_BYTES:
                raise InvalidSpec(
                    f"spec.{name}.resources.memory: {comp.resources.memory} is below 6Mi, "
                    "Docker's minimum memory limit"
                )
        volume = self.redis.persistence.volume_name
        if volume is not None and (len(volume) > 200 or not _DOCKER_NAME.fullmatch(volume)):
            raise InvalidSpec(
                f"spec.redis.persistence.volumeName: {volume[:80]!r} is not a Docker volume name "
                "([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 200 characters)"
            )

    def secret_refs(self) -> dict[str, SecretKeyRef]:
        """Every Secret key the stack needs, by the env variable it becomes. The alert
        webhook's Secret is not one of them: the containers never see it, and a missing one
        must not hold up the reconcile (the watch reports it; core/alerts.py)."""
        refs = {
            "REDIS_PASSWORD": self.redis.password,
            "ANTHROPIC_API_KEY": self.upstream.api_key,
            "BACKEND_API_KEY": self.backend.api_key,
        }
        return {k: v for k, v in refs.items() if v is not None}


MIN_MEMORY_BYTES = 6 * 1024**2
"""Docker refuses a memory limit below 6 MiB (linuxMinMemory)."""
MIN_NANO_CPUS = 10**7
"""Docker refuses a CPU limit below 0.01 CPU."""
MAX_IMAGE_LENGTH = 512
MAX_PLUGIN_STRING = 256
MAX_ENV_NAME_LENGTH = 128
_IMAGE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._/:@-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
"""Docker's grammar of container and volume names."""
_HOST_CHARS = re.compile(r"[-0-9A-Za-z.:%]+")
_HOST_NAME = re.compile(
    r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def is_host_address(address: str) -> bool:
    """A DNS host name or an IP literal (fullmatch: `$` would let a trailing newline in; the
    character check first: Python takes anything as an IPv6 scope, `fe80::1%a\nb` too)."""
    if not _HOST_CHARS.fullmatch(address):
        return False
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return len(address) <= 253 and _HOST_NAME.fullmatch(address) is not None
    return True


def is_docker_name(name: str) -> bool:
    """Whether Docker accepts `name` for a container or volume."""
    return _DOCKER_NAME.fullmatch(name) is not None


_MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def parse_nginx_size(size: str) -> int:
    """nginx size ("10m", "512k", "1g", "8192") -> bytes."""
    m = re.fullmatch(r"([0-9]+)([kKmMgG]?)", size.strip())
    if m is None:
        raise InvalidSpec(f"size {size!r} is not like 8192, 512k, 10m or 1g")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def parse_memory(quantity: str) -> int:
    """Kubernetes memory quantity -> bytes ("256Mi" -> 268435456)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kMGT]i?|)", quantity.strip())
    if not m or m.group(2) not in _MEMORY_UNITS:
        raise InvalidSpec(f"memory {quantity!r} is not a quantity like 256Mi or 1G")
    return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2)])


def parse_cpu(quantity: str) -> int:
    """Kubernetes CPU quantity -> Docker NanoCpus ("500m" -> 500000000, "2" -> 2e9)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", quantity.strip())
    if not m:
        raise InvalidSpec(f"cpu {quantity!r} is not a quantity like 500m or 1.5")
    value = float(m.group(1)) / (1000 if m.group(2) else 1)
    if value <= 0:
        raise InvalidSpec(f"cpu {quantity!r} must be positive")
    return int(value * 1e9)


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
