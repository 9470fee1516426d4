"""Preflight: the checks that must pass before anything is started or changed.

Each check raises PreflightFailed with a vocabulary reason and a message that names the fix;
`resolve_secrets` returns the Secret values the stack needs (never logged), each checked to be
text its consumer can take. What depends only on the spec is refused earlier, by the CRD and
`StackSpec.validate`; what depends on the host (CPUs, ports, images, disk) or on the Secrets is
refused here, before anything is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kongmasker.adapters.kube import SecretReader
from kongmasker.adapters.runtime import EngineInfo, Runtime
from kongmasker.api.spec import SecretKeyRef, StackSpec
from kongmasker.api.vocabulary import (
    LABEL_OPERATOR,
    LABEL_STACK_NAME,
    LABEL_STACK_NAMESPACE,
    Component,
    Reason,
)
from kongmasker.config import Settings
from kongmasker.core.render import Desired, StackRef
from kongmasker.core.stack import Observed
from kongmasker.errors import NotFound, PreflightFailed, RuntimeUnavailable

PORT_NAMES: dict[Component, tuple[str, ...]] = {
    Component.REDIS: ("redis.port",),
    Component.KONG: ("kong.proxyPort", "kong.adminPort", "kong.statusPort"),
    Component.NGINX: ("nginx.port",),
    Component.BACKEND: ("backend.port",),
}


@dataclass(frozen=True)
class PreflightReport:
    engine: EngineInfo
    message: str


def engine(runtime: Runtime, url: str) -> EngineInfo:
    """The Docker engine answers; its version is recorded."""
    try:
        return runtime.info()
    except RuntimeUnavailable as exc:
        raise PreflightFailed(
            f"Docker at {url or 'the default socket'} does not answer ({exc.message}); "
            "start dockerd or fix spec.dockerHost.url",
            reason=Reason.DOCKER_UNREACHABLE,
        ) from exc


def resolve_secrets(spec: StackSpec, namespace: str, secrets: SecretReader) -> dict[str, str]:
    """Env name -> value for every Secret key the spec references."""
    values: dict[str, str] = {}
    cache: dict[str, dict[str, bytes]] = {}
    for env_name, ref in spec.secret_refs().items():
        if ref.name not in cache:
            try:
                cache[ref.name] = secrets.read_secret(namespace, ref.name)
            except NotFound as exc:
                raise PreflightFailed(
                    f"Secret {namespace}/{ref.name} (for {env_name}) does not exist; create it "
                    f"with key {ref.key!r}",
                    reason=Reason.SECRET_MISSING,
                ) from exc
        data = cache[ref.name]
        if ref.key not in data:
            raise PreflightFailed(
                f"Secret {namespace}/{ref.name} has no key {ref.key!r} (for {env_name}); add it "
                "or fix the secretRef key",
                reason=Reason.SECRET_KEY_MISSING,
            )
        values[env_name] = secret_text(namespace, ref, env_name, data[ref.key])
    return values


# What a Secret value handed to a container cannot hold: Docker refuses a NUL in an env value
# (C strings end there), and Redis's requirepass and the HTTP header an API key becomes both
# end at a line break, so a value with one would silently be another password or key.
_UNUSABLE = {"\x00": "a NUL byte", "\n": "a newline", "\r": "a carriage return"}


def secret_text(namespace: str, ref: SecretKeyRef, env_name: str, raw: bytes) -> str:
    """The value of one Secret key as the text its consumer takes, or PreflightFailed naming
    the key and the fix (never the value: the messages reach status and Events)."""
    where = f"Secret {namespace}/{ref.name} key {ref.key!r} (for {env_name})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # `from None`: the UnicodeDecodeError's text quotes the value's bytes.
        raise PreflightFailed(
            f"{where} is not UTF-8 text (invalid byte at offset {exc.start}); store the value "
            "as UTF-8 text",
            reason=Reason.SECRET_VALUE_INVALID,
        ) from None
    for char, what in _UNUSABLE.items():
        if char in text:
            trailing = text.rstrip("\r\n") != text and not any(
                c in text.rstrip("\r\n") for c in _UNUSABLE
            )
            hint = (
                "remove the trailing line break (create the Secret with --from-literal or "
                "printf, not echo)"
                if trailing
                else "store the value without it"
            )
            raise PreflightFailed(
                f"{where} contains {what}, which {env_name} cannot carry; {hint}",
                reason=Reason.SECRET_VALUE_INVALID,
            )
    return text


def cpus(info: EngineInfo, spec: StackSpec) -> None:
    """No component asks for more CPUs than the engine's host has (Docker refuses it at
    create, after the components before it have started)."""
    if info.ncpu is None:
        return
    over = [
        f"spec.{name}.resources.cpu={comp.resources.cpu}"
        for name, comp in spec.components().items()
        if (comp.resources.nano_cpus or 0) > info.ncpu * 10**9
    ]
    if over:
        raise PreflightFailed(
            f"{', '.join(over)}: more than the {info.ncpu} CPU(s) of the Docker host; set at "
            f"most {info.ncpu}",
            reason=Reason.INSUFFICIENT_CPU,
        )


def images(runtime: Runtime, desired: Mapping[Component, Desired]) -> None:
    """Every image is present on the engine (nothing is pulled)."""
    missing = sorted({d.container.image for d in desired.values()} - _present(runtime, desired))
    if missing:
        raise PreflightFailed(
            f"image(s) not on the Docker host: {', '.join(missing)}; build or load them "
            "(e.g. bash hack/build-images.sh all) or fix spec.<component>.image",
            reason=Reason.IMAGE_MISSING,
        )


def _present(runtime: Runtime, desired: Mapping[Component, Desired]) -> set[str]:
    return {d.container.image for d in desired.values() if runtime.image_exists(d.container.image)}


def ports(runtime: Runtime, spec: StackSpec, observed: Mapping[Component, Observed]) -> None:
    """Host ports are free, or held by this stack's own running container."""
    host_ports = spec.host_ports()
    taken = []
    for comp, names in PORT_NAMES.items():
        obs = observed[comp]
        if any(c.running for c in [obs.container, *obs.extras] if c is not None):
            continue  # a container of this stack holds them (and gives them back first)
        for name in names:
            port = host_ports[name]
            if runtime.host_port_free(spec.docker_host.address, port) is False:
                taken.append(f"spec.{name}={port}")
    if taken:
        raise PreflightFailed(
            f"host port(s) in use by another process: {', '.join(taken)}; stop that process "
            "or choose other ports",
            reason=Reason.PORT_IN_USE,
        )


def volume(runtime: Runtime, ref: StackRef, spec: StackSpec) -> None:
    """The Redis volume must be one made for this stack (issue 11): absent (it is created,
    labelled with the stack's namespace, name and uid) or labelled for this namespace/name
    (a re-created stack finds its data again). Anything else - another stack's volume, a
    volume made by hand - would hand this stack someone else's mappings: refused."""
    name = ref.redis_volume(spec)
    labels = runtime.volume_labels(name)
    if labels is None:
        return
    owner_ns, owner_name = labels.get(LABEL_STACK_NAMESPACE), labels.get(LABEL_STACK_NAME)
    operator = labels.get(LABEL_OPERATOR)
    if operator and operator != runtime.owner:
        whose = f"it belongs to operator {operator!r} (this one is {runtime.owner!r})"
    elif (owner_ns, owner_name) == (ref.namespace, ref.name):
        return
    elif owner_ns and owner_name:
        whose = f"it belongs to stack {owner_ns}/{owner_name}"
    else:
        whose = "it was not made by the operator for this stack"
    raise PreflightFailed(
        f"spec.redis.persistence.volumeName: volume {name} cannot be used, {whose}; a stack "
        "uses only volumes made for it: remove volumeName (the stack gets its own) or name a "
        "volume that does not exist yet",
        reason=Reason.FOREIGN_VOLUME,
    )


def disk(info: EngineInfo, settings: Settings) -> str:
    """Free space on the engine's data root is above the threshold; returns a note."""
    need = settings.preflight.min_free_disk_mb * 1024 * 1024
    if info.free_disk_bytes is None:
        return "free disk not measurable on a remote engine"
    if info.free_disk_bytes < need:
        raise PreflightFailed(
            f"only {info.free_disk_bytes // 2**20} MiB free under {info.data_root}, "
            f"{settings.preflight.min_free_disk_mb} MiB required; free space on the Docker host",
            reason=Reason.DISK_LOW,
        )
    return f"{info.free_disk_bytes // 2**20} MiB free"
