"""Container HEALTHCHECK probes: `python -m kongmasker_dataplane healthcheck SERVICE`.

Liveness only (the process answers HTTP on its own listener); readiness is for the operator's
health gates (`/status/ready`, `/health/ready`). Uses the standard library so the probe starts
fast and cannot be broken by the service's own dependencies.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping

from .serving import parse_listen

# service -> (listen variable, default, path)
_PROBES = {
    "gateway": ("KONG_STATUS_LISTEN", "127.0.0.1:8100", "/status"),
    "backend": ("BACKEND_LISTEN", "127.0.0.1:3000", "/health"),
    "mock-upstream": ("MOCK_LISTEN", "127.0.0.1:8090", "/health"),
}


def probe_url(service: str, env: Mapping[str, str]) -> str:
    """The URL the probe of `service` calls; a wildcard bind is probed on loopback."""
    var, default, path = _PROBES[service]
    host, port = parse_listen(env.get(var), default)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def check(service: str, env: Mapping[str, str] | None = None, timeout: float = 3.0) -> int:
    """0 when the service answers 200, else 1."""
    url = probe_url(service, os.environ if env is None else env)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 0 if resp.status == 200 else 1
    except OSError:
        return 1
