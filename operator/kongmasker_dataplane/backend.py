"""The backend application: `POST /analyze` sends text to the AI API through Nginx -> gateway.

Environment: BACKEND_LISTEN (127.0.0.1:3000), KONG_PROXY_URL (where the AI call goes; the
operator points it at Nginx), KONG_ADMIN_URL, REDIS_HOST / REDIS_PORT / REDIS_PASSWORD /
REDIS_DB, ANTHROPIC_API_KEY (sent upstream as x-api-key), ANTHROPIC_MODEL, BACKEND_API_KEY
(clients must send it as X-API-Key; when unset, authentication is off and a warning is logged),
BACKEND_GRACE_SECONDS (10), BACKEND_UPSTREAM_TIMEOUT (60).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from .metrics import CONTENT_TYPE_LATEST, BackendMetrics, render
from .serving import Listener, Server, parse_listen

__all__ = ["Backend", "BackendSettings", "main"]

log = logging.getLogger("kongmasker.backend")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class BackendSettings:
    """The backend's environment contract (see the module docstring)."""

    listen: tuple[str, int] = ("127.0.0.1", 3000)
    proxy_url: str = "http://127.0.0.1:8000"
    admin_url: str = "http://127.0.0.1:8001"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: str | None = None
    redis_db: int = 0
    anthropic_api_key: str = ""
    model: str = "claude-3-5-sonnet-20241022"
    api_key: str | None = None
    grace: float = 10.0
    upstream_timeout: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BackendSettings:
        return cls(
            listen=parse_listen(env.get("BACKEND_LISTEN"), "127.0.0.1:3000"),
            proxy_url=env.get("KONG_PROXY_URL", "http://127.0.0.1:8000").rstrip("/"),
            admin_url=env.get("KONG_ADMIN_URL", "http://127.0.0.1:8001").rstrip("/"),
            redis_host=env.get("REDIS_HOST", "127.0.0.1"),
            redis_port=int(env.get("REDIS_PORT", "6379")),
            redis_password=env.get("REDIS_PASSWORD") or None,
            redis_db=int(env.get("REDIS_DB", "0")),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY", ""),
            model=env.get("ANTHROPIC_MODEL", "claude-3-5-sonnet-20241022"),
            api_key=env.get("BACKEND_API_KEY") or None,
            grace=float(env.get("BACKEND_GRACE_SECONDS", "10")),
            upstream_timeout=float(env.get("BACKEND_UPSTREAM_TIMEOUT", "60")),
        )


class Backend:
    """The backend app: health, readiness, authenticated /analyze, metrics."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self.metrics = BackendMetrics()
        self.draining = False
        self._session: ClientSession | None = None
        self._redis = aioredis.Redis(
            host=settings.redis_host, port=settings.redis_port, db=settings.redis_db,
            password=settings.redis_password, socket_timeout=2, socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), 1),
        )  # fmt: skip

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._count],  # type: ignore[list-item]  # a bound method middleware
            client_max_size=16 * 1024 * 1024,
        )
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/health/ready", self.handle_ready)
        app.router.add_post("/analyze", self.handle_analyze)
        app.router.add_get("/metrics", self.handle_metrics)
        return app

    def session(self) -> ClientSession:
        if self._session is None:
            # One connection per call (no keep-alive): an idle pooled connection the proxy
            # closes while it drains (graceful restart) would fail a POST that cannot be
            # retried; a local connect costs nothing next to an AI call.
            self._session = ClientSession(
                timeout=ClientTimeout(total=self.settings.upstream_timeout, sock_connect=5),
                connector=TCPConnector(force_close=True),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self._redis.aclose()

    @web.middleware
    async def _count(self, req: web.Request, handler: Handler) -> web.StreamResponse:
        code = 500
        try:
            resp = await handler(req)
            code = resp.status
            return resp
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            path = req.match_info.route.resource.canonical if req.match_info.route.resource else "-"
            self.metrics.requests.labels(path, str(code)).inc()

    async def handle_health(self, _req: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "service": "backend"})

    async def _kong_ok(self) -> str | None:
        try:
            async with self.session().get(
                f"{self.settings.admin_url}/status", timeout=ClientTimeout(total=3)
            ) as resp:
                return None if resp.status == 200 else f"kong /status answered {resp.status}"
        except (TimeoutError, ClientError, OSError) as exc:
            return f"kong /status unreachable ({type(exc).__name__})"

    async def _redis_ok(self) -> str | None:
        try:
            await self._redis.ping()
            return None
        except (RedisError, OSError) as exc:
            return f"redis PING failed ({type(exc).__name__})"

    async def handle_ready(self, _req: web.Request) -> web.Response:
        reasons = [r for r in await asyncio.gather(self._kong_ok(), self._redis_ok()) if r]
        if self.draining:
            reasons.insert(0, "draining: shutting down")
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready", "checks": {"kong": "ok", "redis": "ok"}})

    async def handle_metrics(self, _req: web.Request) -> web.Response:
        return web.Response(
            body=render(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    def _authorized(self, req: web.Request) -> bool:
        expected = self.settings.api_key
        if expected is None:
            return True
        given = req.headers.get("X-API-Key", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    async def handle_analyze(self, req: web.Request) -> web.Response:
        if not self._authorized(req):
            self.metrics.auth_failures.inc()
            log.warning("rejected /analyze from %s: missing or wrong X-API-Key", req.remote)
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            body = await req.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return web.json_response(
                {"error": "field 'text' (a non-empty string) is required"}, status=400
            )
        started = time.perf_counter()
        try:
            status, reply = await self._call_ai(text, body.get("max_tokens", 1024))
        finally:
            self.metrics.analyze_seconds.observe(time.perf_counter() - started)
        if status != 200:
            self.metrics.upstream_errors.inc()
            code = 503 if status in (503, 0) else 502
            return web.json_response(
                {"error": "AI call failed", "upstream_status": status}, status=code
            )
        return web.json_response(
            {
                "analysis": _reply_text(reply),
                "model": reply.get("model"),
                "usage": reply.get("usage"),
                "duration_ms": int((time.perf_counter() - started) * 1000),
            }
        )

    async def _call_ai(self, text: str, max_tokens: Any) -> tuple[int, dict[str, Any]]:
        payload = {
            "model": self.settings.model,
            "max_tokens": max_tokens if isinstance(max_tokens, int) else 1024,
            "messages": [{"role": "user", "content": text}],
        }
        headers = {"x-api-key": self.settings.anthropic_api_key, "anthropic-version": "2023-06-01"}
        try:
            async with self.session().post(
                f"{self.settings.proxy_url}/v1/messages", json=payload, headers=headers
            ) as resp:
                data = await resp.json(content_type=None) if resp.status == 200 else {}
                return resp.status, data if isinstance(data, dict) else {}
        except (TimeoutError, ClientError, OSError, ValueError) as exc:
            log.warning("AI call failed: %s", type(exc).__name__)
            return 0, {}

    def start_drain(self) -> None:
        self.draining = True


def _reply_text(reply: dict[str, Any]) -> str:
    blocks = reply.get("content") or []
    return "".join(b.get("text", "") for b in blocks if isinstance(b, dict))


async def run(env: Mapping[str, str]) -> None:
    """Serve until SIGTERM, then drain."""
    settings = BackendSettings.from_env(env)
    backend = Backend(settings)
    if settings.api_key is None:
        log.warning("BACKEND_API_KEY is not set: /analyze accepts unauthenticated requests")
    server = Server(
        [Listener(backend.app(), *settings.listen, drain_first=True)],
        grace=settings.grace, on_drain=backend.start_drain, on_stopped=backend.close,
    )  # fmt: skip
    await server.run()


def main() -> None:
    """Entry point of `python -m kongmasker_dataplane backend`."""
    asyncio.run(run(os.environ))
