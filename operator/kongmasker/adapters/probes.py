"""Network probes used by the health gates: HTTP GET/POST and Redis commands.

`Probes` is the protocol core sees; `NetProbes` is the real one (httpx, redis-py). Errors
become results (a probe that cannot connect is an unhealthy answer, not an exception).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    """HTTP status, or 0 when no answer came (the error is in `error`)."""
    body: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Probes(Protocol):
    def http_get(self, url: str) -> HttpAnswer: ...

    def http_post(self, url: str, payload: Any) -> HttpAnswer: ...

    def redis(self, host: str, port: int, password: str | None, *command: str) -> Any:
        """Run one Redis command; raises ConnectionError/RuntimeError-like on failure."""
        ...


class ProbeFailed(Exception):
    """A Redis probe got no (or an error) answer; the message holds no secrets."""


class NetProbes:
    """Real probes with a per-call timeout."""

    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout)

    def http_get(self, url: str) -> HttpAnswer:
        try:
            resp = self._http.get(url)
        except httpx.HTTPError as exc:
            return HttpAnswer(0, error=f"{type(exc).__name__}: {exc}")
        return HttpAnswer(resp.status_code, _body(resp))

    def http_post(self, url: str, payload: Any) -> HttpAnswer:
        try:
            resp = self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            return HttpAnswer(0, error=f"{type(exc).__name__}: {exc}")
        return HttpAnswer(resp.status_code, _body(resp))

    def redis(self, host: str, port: int, password: str | None, *command: str) -> Any:
        client = redis.Redis(
            host=host,
            port=port,
            password=password,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        try:
            return client.execute_command(*command)
        except redis.AuthenticationError as exc:
            raise ProbeFailed("Redis refused the password from the Secret") from exc
        except redis.RedisError as exc:
            raise ProbeFailed(f"Redis {command[0]} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            client.close()


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (json.JSONDecodeError, ValueError):
        return resp.text
