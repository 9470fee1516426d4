"""What every verb needs: the stack object and its neighbours from the API server, and the
stack's Docker engine resolved exactly as the operator resolves it.

    kubeconfig (KUBECONFIG) -> Cluster: stack, StackBackups, Events, Secrets, patches
    stack spec -> core.reconcile.engine_for (spec.dockerHost + TLS Secret, else DOCKER_HOST)
               -> adapters.docker.DockerRuntime

Errors a user can fix are `CliError`s with the fix in the message; main.py prints them and
exits with their code.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import kubernetes
from kubernetes.client.exceptions import ApiException

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.kube import KubeClient
from kongmasker.adapters.runtime import Runtime
from kongmasker.api.backup import BACKUP_PLURAL
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import GROUP, PLURAL, VERSION, ConditionType
from kongmasker.config import Settings
from kongmasker.core.reconcile import engine_for
from kongmasker.core.render import StackRef
from kongmasker.errors import KongMaskerError

EXIT_OK = 0
EXIT_NOT_READY = 1
"""status: the stack is not Ready; backup/restore/hibernate --wait: it did not succeed."""
EXIT_ERROR = 2
"""Bad usage, unknown stack, API server or Docker engine unreachable."""

REDACTED = "<redacted>"
SECRET_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIAL", re.IGNORECASE)


class CliError(Exception):
    """A failure the user can act on; `message` names what and how to fix it."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _load_kubeconfig() -> str:
    """Load the client configuration; return the current context's namespace."""
    try:
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    except (kubernetes.config.ConfigException, OSError) as exc:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            raise CliError(f"no Kubernetes configuration: {exc}; set KUBECONFIG") from exc
        return "default"
    try:
        _, current = kubernetes.config.list_kube_config_contexts(
            config_file=os.environ.get("KUBECONFIG")
        )
        return str((current.get("context") or {}).get("namespace") or "default")
    except (kubernetes.config.ConfigException, OSError):
        return "default"


@dataclass
class Cluster:
    """The plugin's view of the API server for one namespace."""

    namespace: str
    kube: KubeClient
    core: Any = field(default=None)
    custom: Any = field(default=None)

    @classmethod
    def connect(cls, namespace: str | None) -> Cluster:
        default_ns = _load_kubeconfig()
        kube = KubeClient()
        return cls(
            namespace or default_ns,
            kube,
            kubernetes.client.CoreV1Api(),
            kubernetes.client.CustomObjectsApi(),
        )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise CliError(f"{what} not found in namespace {self.namespace}") from exc
            raise CliError(f"{what}: HTTP {exc.status} {exc.reason}") from exc
        except Exception as exc:  # urllib3 errors: the API server is not reachable
            if isinstance(exc, CliError):
                raise
            raise CliError(f"{what}: cannot reach the Kubernetes API server: {exc}") from exc

    def stack(self, name: str) -> dict[str, Any]:
        obj = self._call(
            f"KongMaskerStack {name!r}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
        )
        return dict(obj)

    def patch_stack(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._call(
                f"KongMaskerStack {name!r}",
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                body,
            )
        )

    def backups(self, stack: str) -> list[dict[str, Any]]:
        """Every StackBackup of the namespace that names `stack`, oldest first."""
        raw = self._call(
            "StackBackups",
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            BACKUP_PLURAL,
        )
        items = [
            b
            for b in raw.get("items") or []
            if ((b.get("spec") or {}).get("stackRef") or {}).get("name") == stack
        ]
        return sorted(items, key=lambda b: b["metadata"].get("creationTimestamp") or "")

    def backup(self, name: str) -> dict[str, Any]:
        return dict(
            self._call(
                f"StackBackup {name!r}",
                self.custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                BACKUP_PLURAL,
                name,
            )
        )

    def create_backup(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._call(
                f"StackBackup {body['metadata']['name']!r}",
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                BACKUP_PLURAL,
                body,
            )
        )

    def events(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """Events of the named objects (the stack, its backups), oldest first."""
        wanted = set(names)
        raw = self._call("Events", self.core.list_namespaced_event, self.namespace)
        out = [
            self.core.api_client.sanitize_for_serialization(e)
            for e in raw.items
            if e.involved_object.name in wanted
        ]
        return sorted(out, key=event_time)

    def secret_values(self) -> list[str]:
        """Every Secret value of the namespace (longest first): what a report must not hold."""
        raw = self._call("Secrets", self.core.list_namespaced_secret, self.namespace)
        values: set[str] = set()
        import base64

        for s in raw.items:
            for v in (s.data or {}).values():
                text = base64.b64decode(v).decode(errors="replace").strip()
                if len(text) >= 4:
                    values.add(text)
                    values.update(line for line in text.splitlines() if len(line.strip()) >= 16)
        return sorted(values, key=len, reverse=True)


def event_time(e: Mapping[str, Any]) -> str:
    return str(
        e.get("lastTimestamp")
        or e.get("eventTime")
        or e.get("firstTimestamp")
        or (e.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


@dataclass(frozen=True)
class Stack:
    """One KongMaskerStack as the plugin sees it."""

    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.obj.get("status") or {})

    @property
    def spec(self) -> StackSpec:
        try:
            return StackSpec.from_dict(self.obj.get("spec") or {})
        except KongMaskerError as exc:
            raise CliError(f"stack {self.name}: invalid spec: {exc}") from exc

    @property
    def ref(self) -> StackRef:
        meta = self.obj["metadata"]
        return StackRef(self.namespace, self.name, str(meta.get("uid", "")))

    def condition(self, ctype: str) -> dict[str, Any]:
        return next((c for c in self.status.get("conditions") or [] if c.get("type") == ctype), {})

    @property
    def ready(self) -> bool:
        """Ready=True for the current generation: what `kubectl wait` would accept."""
        gen = int(self.obj["metadata"].get("generation", 0) or 0)
        observed = int(self.status.get("observedGeneration", 0) or 0)
        return observed >= gen and self.condition(ConditionType.READY).get("status") == "True"


def engine(cluster: Cluster, stack: Stack) -> DockerRuntime:
    """The stack's Docker engine, reached as the operator reaches it; checked to answer."""
    spec = stack.spec

    def connect(url: str, tls_files: Mapping[str, bytes] | None) -> Runtime:
        # An observer: the stack's containers carry the identity of whichever operator made
        # them (kongmasker-operator.<namespace> in a cluster), which the plugin cannot know.
        return DockerRuntime.connect(url, tls_files=tls_files, timeout=15, owner=None)

    default_url = Settings.from_env().docker.default_url
    shown = (
        spec.docker_host.url
        or default_url
        or os.environ.get("DOCKER_HOST", "")
        or ("unix:///var/run/docker.sock")
    )
    try:
        runtime = engine_for(spec, stack.namespace, cluster.kube, connect, default_url)
        assert isinstance(runtime, DockerRuntime)
        runtime.info()
    except KongMaskerError as exc:
        where = "spec.dockerHost.url" if spec.docker_host.url else "DOCKER_HOST"
        raise CliError(
            f"cannot reach the Docker engine of stack {stack.name} at {shown}: {exc}; "
            f"check {where}"
            + (" and the TLS Secret spec.dockerHost.tlsSecretRef" if spec.docker_host.tls else "")
        ) from exc
    return runtime


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: str) -> dt.datetime | None:
    """RFC 3339 (Kubernetes' and Docker's, nanoseconds allowed) -> aware datetime."""
    if not value or value.startswith("0001-"):
        return None
    base, _, frac = value.rstrip("Z").partition(".")
    tz = ""
    for sep in ("+", "-"):
        if sep in frac:
            frac, _, tz = frac.partition(sep)
            tz = sep + tz
    if not frac and len(base) > 19:
        base, tz = base[:19], base[19:]
    try:
        parsed = dt.datetime.fromisoformat(
            base + (f".{frac[:6]}" if frac else "") + (tz or "+00:00")
        )
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC)


def ago(value: str, at: dt.datetime | None = None) -> str:
    """'3m12s' since an RFC 3339 time; '-' if unknown."""
    then = parse_time(value)
    if then is None:
        return "-"
    return duration((at or now()) - then)


def duration(delta: dt.timedelta) -> str:
    secs = max(0, int(delta.total_seconds()))
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{mins}m"
    if mins:
        return f"{mins}m{secs}s"
    return f"{secs}s"


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text


def fetch_metrics(url: str, timeout: float = 3.0) -> str | None:
    """The Prometheus text at `url`, or None if it does not answer."""
    try:
        reply = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None
    return reply.text if reply.status_code == 200 else None


def operator_metrics_url(explicit: str | None) -> str | None:
    """--metrics-url, else KONGMASKER_METRICS_URL (`make env` exports it)."""
    return explicit or os.environ.get("KONGMASKER_METRICS_URL") or None
