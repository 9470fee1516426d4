"""The Docker implementation of the Runtime protocol: the only module that imports docker.

Docker SDK and requests errors are translated here into kongmasker.errors:
connection problems -> RuntimeUnavailable, 404 -> NotFound, other API errors ->
RuntimeOperationError. Nothing foreign escapes this module.

Operator identity (issue 11): every container, volume and network this client creates gets
the label kongmasker.io/operator-id=<owner>; listings and event streams are filtered by it,
and stop/remove of a container or volume another operator made is refused here, so no
caller (start-up sweep, repair, delete) can touch another operator's objects on a shared
engine. Objects without the label were made before identities existed: they may be
removed (the migration to the current names does that), never listed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

import docker
import docker.errors
import docker.tls
import requests.exceptions

from kongmasker.adapters.runtime import (
    ContainerInfo,
    ContainerSpec,
    ContainerStats,
    EngineInfo,
    ExecResult,
    RuntimeEvent,
)
from kongmasker.api.vocabulary import LABEL_OPERATOR
from kongmasker.config import DEFAULT_OPERATOR_ID
from kongmasker.errors import NotFound, RuntimeOperationError, RuntimeUnavailable

TLS_API_VERSION = "1.41"
"""API version spoken to TCP+TLS engines (Docker 20.10 and later all serve it)."""

REQUESTED_MEMORY = 300.0
"""Seconds a stop or remove this client made explains the container's later events."""

P = ParamSpec("P")
T = TypeVar("T")


def _mapped(fn: Callable[P, T]) -> Callable[P, T]:
    """Translate docker/requests errors raised by `fn` into the operator's tree."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound as exc:
            raise NotFound(_explain(exc)) from exc
        except docker.errors.APIError as exc:
            raise RuntimeOperationError(_explain(exc)) from exc
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RuntimeUnavailable(f"Docker engine unreachable: {exc}") from exc

    return wrapper


def _mapped_iter(stream: Iterator[bytes]) -> Iterator[bytes]:
    """A log stream whose errors are the operator's too; yields whole lines."""
    pending = b""
    try:
        for chunk in stream:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line + b"\n" for line in lines)
    except docker.errors.DockerException as exc:
        raise RuntimeUnavailable(f"Docker log stream failed: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise RuntimeUnavailable(f"Docker log stream failed: {exc}") from exc
    if pending:
        yield pending + b"\n"


def _explain(exc: docker.errors.APIError) -> str:
    return str(getattr(exc, "explanation", None) or exc)


class DockerRuntime:
    """A Runtime backed by one Docker engine (docker SDK, API 1.41+)."""

    def __init__(
        self, client: docker.DockerClient, url: str, owner: str | None = DEFAULT_OPERATOR_ID
    ) -> None:
        self._client = client
        self._api = client.api
        self.url = url
        self.owner = owner
        self._data_root: str | None = None
        self._ncpu: int | None = None
        # Containers this client stopped or removed, and when: their `die` events are ours.
        self._requested: dict[str, float] = {}

    @classmethod
    def connect(
        cls,
        url: str = "",
        *,
        tls_files: Mapping[str, bytes] | None = None,
        timeout: float = 60,
        owner: str | None = DEFAULT_OPERATOR_ID,
    ) -> DockerRuntime:
        """Client for `url` (empty: DOCKER_HOST, then the local socket). `tls_files` holds
        ca.pem, cert.pem and key.pem contents for a TCP engine with TLS. `owner=None` makes an
        observer (the kubectl plugin): it sees every operator's objects and may change none."""
        url = url or os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"
        if not tls_files:
            try:
                client = docker.DockerClient(base_url=url, timeout=int(timeout))
            except docker.errors.DockerException as exc:
                raise RuntimeUnavailable(f"cannot create a Docker client for {url}: {exc}") from exc
            return cls(client, url, owner)
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override the
        # session's CA, so the engine's CA from the Secret would be ignored wherever they are set
        # (common in corporate images): the client must not trust the environment. The API
        # version is pinned because negotiating it would be the first request, made before
        # that can be switched off.
        client = docker.DockerClient(
            base_url=url, tls=_tls_config(tls_files), timeout=int(timeout), version=TLS_API_VERSION
        )
        client.api.trust_env = False
        try:
            client.api.version(api_version=False)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            client.close()
            raise RuntimeUnavailable(f"cannot reach the Docker engine at {url}: {exc}") from exc
        return cls(client, url, owner)

    def close(self) -> None:
        self._client.close()

    @_mapped
    def info(self) -> EngineInfo:
        version = self._api.version()
        if self._data_root is None:
            # `docker info` is slow (it counts everything); data root and CPUs do not change.
            raw = self._api.info()
            self._data_root = str(raw.get("DockerRootDir", ""))
            self._ncpu = int(raw["NCPU"]) if raw.get("NCPU") else None
        root = self._data_root
        free: int | None = None
        # Only a local engine's data root can be measured from the operator's side.
        if self._is_local() and root and os.path.isdir(root):
            free = shutil.disk_usage(root).free
        return EngineInfo(
            version=str(version.get("Version", "")),
            api_version=str(version.get("ApiVersion", "")),
            data_root=root,
            free_disk_bytes=free,
            ncpu=self._ncpu,
        )

    @_mapped
    def image_exists(self, image: str) -> bool:
        try:
            self._api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        return True

    @_mapped
    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        filters = {"label": self._label_filter(labels)}
        found = self._api.containers(all=True, filters=filters)
        out = []
        for summary in found:
            try:
                out.append(_info(self._api.inspect_container(summary["Id"])))
            except docker.errors.NotFound:
                continue  # removed between list and inspect
        return out

    @_mapped
    def get_container(self, name_or_id: str) -> ContainerInfo | None:
        try:
            return _info(self._api.inspect_container(name_or_id))
        except docker.errors.NotFound:
            return None

    @_mapped
    def create_container(self, spec: ContainerSpec) -> ContainerInfo:
        bridge = spec.network_mode not in ("host", "none")
        # Legacy Binds (not Mounts): the engine creates a missing host directory.
        mounts = {**spec.volumes, **spec.binds}
        host_config = self._api.create_host_config(
            network_mode=spec.network_mode,
            port_bindings={f"{p}/tcp": hp for p, hp in spec.published_ports.items()} or None,
            binds={src: {"bind": path, "mode": "rw"} for src, path in mounts.items()} or None,
            restart_policy={"Name": "unless-stopped" if spec.restart else "no"},
            nano_cpus=spec.nano_cpus,
            mem_limit=spec.memory_bytes,
        )
        networking = None
        if bridge:
            networking = self._api.create_networking_config(
                {spec.network_mode: self._api.create_endpoint_config(aliases=[spec.name])}
            )
        created = self._api.create_container(
            image=spec.image,
            name=spec.name,
            command=list(spec.command) if spec.command else None,
            entrypoint=list(spec.entrypoint) if spec.entrypoint else None,
            environment=dict(spec.env),
            labels={**spec.labels, LABEL_OPERATOR: self.owner},
            ports=list(spec.published_ports) or None,  # ints: docker-py appends "/tcp"
            host_config=host_config,
            networking_config=networking,
            stop_signal=spec.stop_signal,
            stop_timeout=spec.stop_timeout,
        )
        cid = created["Id"]
        try:
            for path, content in spec.files.items():
                self.put_file(cid, path, content)
        except Exception:
            self._api.remove_container(cid, force=True)
            raise
        return _info(self._api.inspect_container(cid))

    @_mapped
    def start_container(self, container_id: str) -> None:
        # Started again: its next exit is not one this client asked for.
        self._requested.pop(container_id, None)
        self._own(container_id)
        self._api.start(container_id)

    @_mapped
    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        # The signal is the container's own StopSignal (set at create): API 1.41 ignores one
        # given at stop time. The HTTP timeout must outlast the grace period.
        self._mark_requested(container_id)  # refuses another operator's container
        self._api.stop(container_id, timeout=timeout)

    @_mapped
    def remove_container(self, container_id: str, force: bool = False) -> None:
        self._mark_requested(container_id)  # refuses another operator's container
        try:
            self._api.remove_container(container_id, force=force)
        except docker.errors.NotFound:
            return

    @_mapped
    def rename_container(self, container_id: str, new_name: str) -> None:
        self._own(container_id)
        self._api.rename(container_id, new_name)

    @_mapped
    def set_auto_restart(self, container_id: str, enabled: bool) -> None:
        policy = {"Name": "unless-stopped" if enabled else "no"}
        self._own(container_id)
        self._api.update_container(container_id, restart_policy=policy)

    def _label_filter(self, labels: Mapping[str, str]) -> list[str]:
        owned = labels if self.owner is None else {**labels, LABEL_OPERATOR: self.owner}
        return [f"{k}={v}" for k, v in owned.items()]

    def _refuse_foreign(self, kind: str, name: str, labels: Mapping[str, str] | None) -> None:
        other = (labels or {}).get(LABEL_OPERATOR)
        if self.owner is None:
            raise RuntimeOperationError(f"{kind} {name}: an observer changes nothing")
        if other and other != self.owner:
            raise RuntimeOperationError(
                f"{kind} {name} belongs to operator {other!r}, not to this one "
                f"({self.owner!r}); left alone"
            )

    def _own(self, container_id: str) -> None:
        """Refuse to act on another operator's container (a missing one: the call says so)."""
        info = None
        with contextlib.suppress(docker.errors.DockerException):
            info = self._api.inspect_container(container_id)
        self._refuse_foreign(
            "container", container_id, ((info or {}).get("Config") or {}).get("Labels")
        )

    def _mark_requested(self, container_id: str) -> None:
        now = time.monotonic()
        info = None
        # Events name the full id; callers may pass a name or a short id.
        with contextlib.suppress(docker.errors.DockerException):
            info = self._api.inspect_container(container_id)
        self._refuse_foreign(
            "container", container_id, ((info or {}).get("Config") or {}).get("Labels")
        )
        full = str((info or {}).get("Id") or container_id)
        self._requested = {
            cid: at for cid, at in self._requested.items() if now - at < REQUESTED_MEMORY
        }
        self._requested[full] = now

    def _was_requested(self, container_id: str) -> bool:
        at = self._requested.get(container_id)
        return at is not None and time.monotonic() - at < REQUESTED_MEMORY

    @_mapped
    def exec(
        self, container_id: str, command: list[str], env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self._own(container_id)
        exec_id = self._api.exec_create(container_id, command, environment=dict(env or {}))
        output = self._api.exec_start(exec_id)
        code = self._api.exec_inspect(exec_id).get("ExitCode")
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return ExecResult(exit_code=int(code or 0), output=text)

    @_mapped
    def put_file(self, container_id: str, path: str, content: bytes) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            entry = tarfile.TarInfo(name=path.lstrip("/"))
            entry.size = len(content)
            entry.mode = 0o644
            entry.mtime = int(time.time())
            tar.addfile(entry, io.BytesIO(content))
        # Extracting at / creates missing parent directories, unlike a put into the parent.
        self._own(container_id)
        self._api.put_archive(container_id, "/", buf.getvalue())

    @_mapped
    def read_file(self, container_id: str, path: str) -> bytes | None:
        try:
            stream, _ = self._api.get_archive(container_id, path)
        except docker.errors.NotFound:
            return None
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None:
                return None
            handle = tar.extractfile(member)
            return handle.read() if handle else None

    # -- diagnostics for the kubectl plugin (not part of the Runtime protocol) --------------
    @_mapped
    def inspect(self, container_id: str) -> dict[str, Any]:
        """`docker inspect` of one container, as the engine returns it."""
        return dict(self._api.inspect_container(container_id))

    @_mapped
    def logs(
        self,
        container_id: str,
        *,
        since: float | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> Iterator[bytes]:
        """Log lines (stdout and stderr) each prefixed with Docker's RFC 3339 timestamp."""
        kwargs: dict[str, Any] = {"timestamps": True, "stream": True, "follow": follow}
        if since is not None:
            kwargs["since"] = int(since)
        if tail is not None:
            kwargs["tail"] = tail
        stream = self._api.logs(container_id, **kwargs)
        return _mapped_iter(stream)

    @_mapped
    def stats(self, container_id: str) -> ContainerStats:
        raw = self._api.stats(container_id, stream=False)
        return _stats(raw)

    def events(
        self, labels: Mapping[str, str], since: float, until: float
    ) -> Iterator[RuntimeEvent]:
        filters = {"type": ["container"], "label": self._label_filter(labels)}
        try:
            stream = self._api.events(since=since, until=until, filters=filters, decode=True)
            for raw in stream:
                actor = raw.get("Actor") or {}
                attributes = dict(actor.get("Attributes") or {})
                cid = str(actor.get("ID") or raw.get("id") or "")
                code = attributes.get("exitCode")
                yield RuntimeEvent(
                    action=str(raw.get("Action") or raw.get("status") or ""),
                    container_id=cid,
                    labels=attributes,
                    time=float(raw.get("timeNano", 0)) / 1e9 or float(raw.get("time", 0)),
                    requested=self._was_requested(cid),
                    exit_code=int(code) if code is not None and str(code).isdigit() else None,
                )
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"Docker event stream failed: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise RuntimeUnavailable(f"Docker event stream failed: {exc}") from exc

    @_mapped
    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        if self._api.networks(names=[name]):
            return
        try:
            self._api.create_network(
                name, driver="bridge", labels={**labels, LABEL_OPERATOR: self.owner}
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # created concurrently: fine
                raise

    @_mapped
    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        try:
            self._api.inspect_volume(name)
        except docker.errors.NotFound:
            self._api.create_volume(name, labels={**labels, LABEL_OPERATOR: self.owner})

    @_mapped
    def volume_labels(self, name: str) -> Mapping[str, str] | None:
        try:
            return dict(self._api.inspect_volume(name).get("Labels") or {})
        except docker.errors.NotFound:
            return None

    @_mapped
    def remove_volume(self, name: str) -> None:
        try:
            self._refuse_foreign("volume", name, self._api.inspect_volume(name).get("Labels"))
            self._api.remove_volume(name)
        except docker.errors.NotFound:
            return

    def host_port_free(self, address: str, port: int) -> bool | None:
        if not self._is_local():
            return None
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            # A listener on the port accepts the connection; a free port refuses it.
            return sock.connect_ex((address, port)) != 0

    def _is_local(self) -> bool:
        parsed = urlparse(self.url)
        return parsed.scheme in ("unix", "npipe", "http+unix") or parsed.hostname in (
            "127.0.0.1",
            "localhost",
        )


def _info(raw: dict[str, Any]) -> ContainerInfo:
    state = raw.get("State") or {}
    config = raw.get("Config") or {}
    health = (state.get("Health") or {}).get("Status", "")
    return ContainerInfo(
        id=str(raw["Id"]),
        name=str(raw.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels=dict(config.get("Labels") or {}),
        status=str(state.get("Status", "")),
        started_at=str(state.get("StartedAt", "")),
        finished_at=str(state.get("FinishedAt", "")),
        restart_count=int(raw.get("RestartCount", 0) or 0),
        health=str(health),
        exit_code=int(state.get("ExitCode", 0) or 0),
    )


def _stats(raw: dict[str, Any]) -> ContainerStats:
    cpu = raw.get("cpu_stats") or {}
    pre = raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or 1
    percent = (cpu_delta / sys_delta) * ncpu * 100.0 if sys_delta > 0 else 0.0
    mem = raw.get("memory_stats") or {}
    nets = (raw.get("networks") or {}).values()
    mem_detail = mem.get("stats") or {}
    # cgroup v1 names it total_inactive_file, v2 inactive_file.
    cache = mem_detail.get("total_inactive_file", mem_detail.get("inactive_file", 0))
    read, write = _block_io(raw.get("blkio_stats") or {})
    return ContainerStats(
        cpu_percent=percent,
        memory_bytes=int(mem.get("usage", 0)),
        memory_limit_bytes=int(mem.get("limit", 0)),
        network_rx_bytes=sum(int(n.get("rx_bytes", 0)) for n in nets),
        network_tx_bytes=sum(int(n.get("tx_bytes", 0)) for n in nets),
        block_read_bytes=read,
        block_write_bytes=write,
        memory_cache_bytes=int(cache or 0),
        online_cpus=int(ncpu),
        network_reported=raw.get("networks") is not None,
    )


def _block_io(blkio: dict[str, Any]) -> tuple[int | None, int | None]:
    """Bytes read and written over all devices; (None, None) if the engine lists none."""
    entries = blkio.get("io_service_bytes_recursive") or []
    if not entries:
        return None, None
    totals = {"read": 0, "write": 0}
    for entry in entries:
        op = str(entry.get("op", "")).lower()
        if op in totals:
            totals[op] += int(entry.get("value", 0))
    return totals["read"], totals["write"]


def _tls_config(files: Mapping[str, bytes]) -> docker.tls.TLSConfig:
    # docker.tls wants paths: write the material to a private temp dir kept for the process.
    directory = tempfile.mkdtemp(prefix="kongmasker-tls-")
    os.chmod(directory, 0o700)
    paths = {}
    for name in ("ca.pem", "cert.pem", "key.pem"):
        if name not in files:
            raise RuntimeUnavailable(f"TLS Secret lacks {name}")
        path = os.path.join(directory, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(files[name])
        paths[name] = path
    return docker.tls.TLSConfig(
        client_cert=(paths["cert.pem"], paths["key.pem"]), ca_cert=paths["ca.pem"], verify=True
    )
