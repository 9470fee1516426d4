"""`kubectl kongmasker report NAME [-o FILE]`: one tar.gz with what a support case needs.

    stack.yaml, stackbackups.yaml, events.yaml           API objects with status
    config/kong.yml, config/nginx.conf                   as running (read from the containers)
    containers/<component>.inspect.json                  docker inspect
    logs/<component>.log                                 container logs (--since / --tail)
    operator.log                                         pod log in a cluster, else its file
    metrics/{operator,gateway,backend}.txt               one scrape each
    manifest.json                                        parts, sizes, time, versions, gaps

Every part goes through one redaction step before it is written: every value of every Secret
in the stack's namespace is replaced by <redacted>, and so is the value of every container
env variable whose name looks secret. A part that cannot be collected is listed in the
manifest's `missing` with the reason; the bundle is still written.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerInfo
from kongmasker.api.vocabulary import LABEL_COMPONENT
from kongmasker.cli.context import (
    EXIT_OK,
    REDACTED,
    SECRET_ENV,
    CliError,
    Cluster,
    Stack,
    engine,
    fetch_metrics,
    now,
    operator_metrics_url,
    redact,
)
from kongmasker.cli.logs import collect, since_epoch, stack_containers
from kongmasker.core.render import KONG_CONFIG_PATH, NGINX_CONFIG_PATH
from kongmasker.errors import KongMaskerError

OPERATOR_LABEL = "app.kubernetes.io/name=kongmasker-operator"
OPERATOR_LOG_LINES = 5000


@dataclass
class Bundle:
    secrets: list[str]
    parts: dict[str, bytes] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, content: str | bytes) -> None:
        text = content.decode(errors="replace") if isinstance(content, bytes) else content
        self.parts[path] = redact(text, self.secrets).encode()

    def attempt(self, path: str, produce: Callable[[], str | bytes | None]) -> None:
        try:
            content = produce()
        except (KongMaskerError, CliError, OSError, kubernetes.client.ApiException) as exc:
            self.missing[path] = redact(str(exc), self.secrets)
            return
        if content is None:
            self.missing[path] = "not available"
        else:
            self.add(path, content)


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _inspect(raw: dict[str, Any]) -> str:
    """docker inspect with secret-looking env values replaced (the Secret values go too)."""
    config = dict(raw.get("Config") or {})
    env = []
    for item in config.get("Env") or []:
        key, sep, _ = str(item).partition("=")
        env.append(f"{key}={REDACTED}" if sep and SECRET_ENV.search(key) else item)
    config["Env"] = env
    return json.dumps({**raw, "Config": config}, indent=2, default=str)


def _inspector(runtime: DockerRuntime, cid: str) -> Callable[[], str]:
    return lambda: _inspect(runtime.inspect(cid))


def _log_reader(
    runtime: DockerRuntime, info: ContainerInfo, start: float | None, tail: int | None
) -> Callable[[], str]:
    return lambda: "".join(f"{x.at} {x.text}\n" for x in collect(runtime, [info], start, tail))


def operator_log(cluster: Cluster, explicit: str | None) -> str | None:
    """--operator-log FILE, KONGMASKER_OPERATOR_LOG (`make env`), else the operator pod's log."""
    path = explicit or os.environ.get("KONGMASKER_OPERATOR_LOG")
    if path:
        lines = Path(path).read_text(errors="replace").splitlines()
        return "\n".join(lines[-OPERATOR_LOG_LINES:]) + "\n"
    pods = cluster.core.list_pod_for_all_namespaces(label_selector=OPERATOR_LABEL).items
    if not pods:
        raise CliError(
            "no operator pod (label app.kubernetes.io/name=kongmasker-operator) and no "
            "--operator-log FILE / KONGMASKER_OPERATOR_LOG"
        )
    pod = pods[0]
    return str(
        cluster.core.read_namespaced_pod_log(
            pod.metadata.name, pod.metadata.namespace, tail_lines=OPERATOR_LOG_LINES
        )
    )


def collect_bundle(
    cluster: Cluster,
    stack: Stack,
    *,
    since: str | None,
    tail: int | None,
    metrics_url: str | None,
    operator_log_path: str | None,
) -> Bundle:
    bundle = Bundle(cluster.secret_values())
    backups = cluster.backups(stack.name)
    bundle.add("stack.yaml", yaml.safe_dump(_clean(stack.obj), sort_keys=False))
    bundle.add(
        "stackbackups.yaml",
        yaml.safe_dump({"items": [_clean(b) for b in backups]}, sort_keys=False),
    )
    names = [stack.name, *(b["metadata"]["name"] for b in backups)]
    bundle.add("events.yaml", yaml.safe_dump({"items": cluster.events(names)}, sort_keys=False))
    versions: dict[str, str] = {"kubectl-kongmasker": metadata.version("kongmasker")}
    try:
        v = kubernetes.client.VersionApi().get_code()
        versions["kubernetes"] = str(v.git_version)
    except Exception as exc:  # the report is still useful without it
        bundle.missing["versions.kubernetes"] = str(exc)
    try:
        runtime = engine(cluster, stack)
    except CliError as exc:
        runtime = None
        bundle.missing["containers"] = exc.message
    if runtime is not None:
        versions["docker"] = runtime.info().version
        containers = stack_containers(runtime, stack, None)
        by_comp = {c.labels.get(LABEL_COMPONENT, c.name): c for c in containers}
        kong, nginx = by_comp.get("kong"), by_comp.get("nginx")
        bundle.attempt(
            "config/kong.yml",
            lambda: runtime.read_file(kong.id, KONG_CONFIG_PATH) if kong else None,
        )
        bundle.attempt(
            "config/nginx.conf",
            lambda: runtime.read_file(nginx.id, NGINX_CONFIG_PATH) if nginx else None,
        )
        start = since_epoch(since)
        for comp, info in by_comp.items():
            bundle.attempt(f"containers/{comp}.inspect.json", _inspector(runtime, info.id))
            bundle.attempt(f"logs/{comp}.log", _log_reader(runtime, info, start, tail))
        if not containers:
            bundle.missing["containers"] = "no container of the stack exists" + (
                " (hibernated)" if stack.spec.hibernated else ""
            )
    bundle.attempt("operator.log", lambda: operator_log(cluster, operator_log_path))
    eps = stack.status.get("endpoints") or {}
    url = operator_metrics_url(metrics_url)
    bundle.attempt("metrics/operator.txt", lambda: fetch_metrics(url) if url else None)
    if eps.get("kongStatus"):
        bundle.attempt("metrics/gateway.txt", lambda: fetch_metrics(f"{eps['kongStatus']}/metrics"))
    if eps.get("backend"):
        bundle.attempt("metrics/backend.txt", lambda: fetch_metrics(f"{eps['backend']}/metrics"))
    bundle.add(
        "manifest.json",
        json.dumps(
            {
                "stack": f"{stack.namespace}/{stack.name}",
                "createdAt": now().isoformat(timespec="seconds"),
                "versions": versions,
                "options": {"since": since, "tail": tail},
                "parts": {p: len(c) for p, c in sorted(bundle.parts.items())},
                "missing": bundle.missing,
                "redaction": f"every Secret value of namespace {stack.namespace} and secret-"
                "looking container env values are replaced by " + REDACTED,
            },
            indent=2,
        ),
    )
    return bundle


def write(bundle: Bundle, target: Path, top: str) -> None:
    with tarfile.open(target, "w:gz") as tar:
        for path, content in bundle.parts.items():
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(content), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(content))


def run(
    cluster: Cluster,
    name: str,
    output: str | None,
    since: str | None,
    tail: int | None,
    metrics_url: str | None,
    operator_log_path: str | None,
) -> int:
    stack = Stack(cluster.stack(name))
    bundle = collect_bundle(
        cluster,
        stack,
        since=since,
        tail=tail,
        metrics_url=metrics_url,
        operator_log_path=operator_log_path,
    )
    top = f"report-{stack.namespace}-{stack.name}-{now().strftime('%Y%m%dT%H%M%SZ')}"
    target = Path(output or f"{top}.tar.gz")
    write(bundle, target, top)
    size = target.stat().st_size
    print(f"{target}: {len(bundle.parts)} parts, {size} bytes")
    for path, why in bundle.missing.items():
        print(f"  missing {path}: {why}")
    return EXIT_OK
