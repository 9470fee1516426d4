"""The Kong-compatible masking gateway: a proxy with the aws-masker behaviour and a subset of
Kong's Admin API, configured like Kong (KONG_* environment, DB-less declarative config).

Request path: route match -> detect identifiers in the body (and query) -> allocate masked ids
in Redis -> forward -> stream the response back, restoring the ids THIS request's body produced
(also when split across chunks or streamed events). The request's own mapping is the only
source for unmasking: a masked id the request did not carry stays as it is, so one client
cannot recover another client's originals by sending their masked ids, and the response path
needs no Redis round trip (a Redis that dies mid-request cannot turn into placeholders).
Should restoring fail anyway, the response fails closed: 502 when nothing was sent yet, an
aborted stream otherwise, never a complete 200 with placeholders.
With identifiers present and Redis unreachable the request
is refused with 503 (fail-secure) unless the plugin sets `fail_secure: false`, in which case the
request is masked with process-local mappings instead (never passed through raw).

Nothing unmasked is ever logged: log lines carry the route, status and counts by type only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

from . import bodies
from .config import (
    PLUGIN_NAME,
    ConfigError,
    GatewayConfig,
    MaskerSettings,
    load_config,
    parse_body,
    redact,
    upstream_path,
)
from .masking import MASKED_ID_BYTES_RE, StreamUnmasker, unmask_bytes
from .metrics import CONTENT_TYPE_LATEST, GatewayMetrics, render
from .serving import Listener, Server, parse_listen
from .sse import SseRechunker
from .store import MappingStore, MemoryStore, RedisSettings, RedisStore, StoreUnavailable

__all__ = ["Gateway", "GatewaySettings", "main"]

# The masked id -> original pairs one request produced: all its response may have restored.
Scope = dict[bytes, bytes]

log = logging.getLogger("kongmasker.gateway")

KONG_VERSION = "3.8.0"
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection",
    }
)  # fmt: skip
# Headers the gateway sets itself on the upstream request.
_REQUEST_DROP = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "content-encoding"}
_BUFFER_LIMIT = 1024 * 1024  # responses up to this size (with a length) are sent in one piece
NO_CONFIG_HASH = "0" * 32
_THREAD_DETECT_BYTES = 128 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    """Process settings, from the Kong-compatible environment."""

    proxy: tuple[str, int] = ("127.0.0.1", 8000)
    admin: tuple[str, int] = ("127.0.0.1", 8001)
    status: tuple[str, int] = ("127.0.0.1", 8100)
    grace: float = 10.0
    declarative: str | None = None
    upstream_timeout: float = 60.0
    plugins: tuple[str, ...] = (PLUGIN_NAME,)
    max_body_bytes: int = 1024 * 1024
    """Kong's client_max_body_size (nginx's default 1m): a larger body gets 413."""
    fault_leak_type: str | None = None
    """Test fault (KONGMASKER_FAULT_LEAK_TYPE=EC2): identifiers of this engine type are sent
    upstream raw, so tests can prove the operator's canary catches a plugin that leaks one
    type. Never set outside tests; it is logged loudly at start."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewaySettings:
        """KONG_PROXY_LISTEN, KONG_ADMIN_LISTEN, KONG_STATUS_LISTEN, KONG_GRACE_SECONDS,
        KONG_DECLARATIVE_CONFIG_STRING / KONG_DECLARATIVE_CONFIG, KONG_UPSTREAM_TIMEOUT,
        KONG_PLUGINS (`bundled,aws-masker`; without aws-masker the plugin is not loaded),
        KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE (nginx size, as Kong injects it)."""
        declarative = env.get("KONG_DECLARATIVE_CONFIG_STRING") or None
        path = env.get("KONG_DECLARATIVE_CONFIG")
        if declarative is None and path:
            try:
                with open(path, encoding="utf-8") as fh:
                    declarative = fh.read()
            except OSError as exc:
                # Stay up and not ready: POST /config can still supply one.
                log.error("cannot read KONG_DECLARATIVE_CONFIG %s: %s", path, exc.strerror)
        plugins_env = env.get("KONG_PLUGINS", f"bundled,{PLUGIN_NAME}")
        plugins = (PLUGIN_NAME,) if PLUGIN_NAME in plugins_env.split(",") else ()
        return cls(
            proxy=parse_listen(env.get("KONG_PROXY_LISTEN"), "127.0.0.1:8000"),
            admin=parse_listen(env.get("KONG_ADMIN_LISTEN"), "127.0.0.1:8001"),
            status=parse_listen(env.get("KONG_STATUS_LISTEN"), "127.0.0.1:8100"),
            grace=float(env.get("KONG_GRACE_SECONDS", "10")),
            declarative=declarative,
            upstream_timeout=float(env.get("KONG_UPSTREAM_TIMEOUT", "60")),
            plugins=plugins,
            max_body_bytes=_nginx_size(env.get("KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE") or "1m"),
            fault_leak_type=env.get("KONGMASKER_FAULT_LEAK_TYPE") or None,
        )


def _nginx_size(text: str) -> int:
    """nginx size ("10m", "512k", "8192") -> bytes."""
    text = text.strip().lower()
    unit = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(text[-1:], 1)
    return int(text[:-1] if unit > 1 else text) * unit


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _kong_error(status: int, message: str) -> web.Response:
    return _json({"message": message}, status)


@dataclass
class _Stats:
    total_requests: int = 0
    active: int = 0
    handled: int = 0


@dataclass
class Gateway:
    """One gateway process: config state, Redis stores, and the three aiohttp apps."""

    settings: GatewaySettings
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    config: GatewayConfig | None = None
    draining: bool = False
    last_error: str | None = None
    _stores: dict[MaskerSettings, RedisStore] = field(default_factory=dict)
    _fallback: MemoryStore = field(default_factory=MemoryStore)
    _stats: _Stats = field(default_factory=_Stats)
    _session: ClientSession | None = None
    on_ready: Callable[[], object] | None = None
    """Called after a config was applied (serving.Server.mark_ready writes the ready file)."""

    # --- configuration -------------------------------------------------------------------

    def load_initial(self) -> None:
        """Apply the config from the environment, if any. An invalid one raises ConfigError
        (fields only, never values): like Kong, the gateway does not start on it."""
        if not self.settings.declarative:
            return
        try:
            self.apply(parse_body(self.settings.declarative.encode()))
        except ConfigError as exc:
            self.last_error = str(exc)
            self.metrics.config_loads.labels("invalid").inc()
            log.error("initial declarative config is invalid, not starting: %s", exc)
            raise

    def apply(self, data: dict[str, Any]) -> GatewayConfig:
        """Validate and switch to a new config live; in-flight requests finish on the old one."""
        if PLUGIN_NAME not in self.settings.plugins and _uses_plugin(data):
            raise ConfigError([(("plugins",), f"plugin '{PLUGIN_NAME}' not enabled")])
        config = load_config(data, dict(self.environ))
        old = self._stores
        self._stores = {}
        for masker in config.redis_settings():
            kept = old.pop(masker, None)
            self._stores[masker] = kept if kept is not None else RedisStore(_redis_settings(masker))
        self.config = config
        self.last_error = None
        self.metrics.config_loads.labels("applied").inc()
        self._update_ready()
        if self.on_ready is not None:
            self.on_ready()
        if old:
            # Requests in flight may still hold these stores: close them after the grace.
            asyncio.get_running_loop().call_later(
                self.settings.grace,
                lambda: [asyncio.ensure_future(s.close()) for s in old.values()],
            )
        log.info("config applied: %d service(s), hash %s", len(config.services), config.hash)
        return config

    def _update_ready(self) -> None:
        self.metrics.ready.set(1 if self.ready else 0)

    @property
    def ready(self) -> bool:
        return self.config is not None and not self.draining

    def start_drain(self) -> None:
        """SIGTERM: report not-ready at once."""
        self.draining = True
        self._update_ready()

    # --- apps ----------------------------------------------------------------------------

    def proxy_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle_proxy)
        return app

    def admin_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        r = app.router
        r.add_get("/", self.handle_root)
        r.add_get("/status", self.handle_status)
        r.add_get("/status/ready", self.handle_ready)
        r.add_get("/plugins/enabled", self.handle_plugins_enabled)
        r.add_post("/config", self.handle_post_config)
        r.add_get("/config", self.handle_get_config)
        r.add_get("/metrics", self.handle_metrics)
        return app

    def status_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/status", self.handle_status)
        app.router.add_get("/status/ready", self.handle_ready)
        app.router.add_get("/metrics", self.handle_metrics)
        return app

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        for store in self._stores.values():
            await store.close()

    def session(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(
                connector=TCPConnector(limit=256),
                timeout=ClientTimeout(
                    total=None, sock_connect=10, sock_read=self.settings.upstream_timeout
                ),
                auto_decompress=True,
            )
        return self._session

    # --- admin handlers ------------------------------------------------------------------

    async def handle_root(self, _req: web.Request) -> web.Response:
        return _json(
            {
                "version": KONG_VERSION,
                "tagline": "Welcome to kong",
                "node_id": "kongmasker-gateway",
                "configuration": {"database": "off", "plugins": list(self.settings.plugins)},
                "plugins": {
                    "available_on_server": {p: {"version": "1.0.0"} for p in self.settings.plugins}
                },
            }
        )

    async def handle_status(self, _req: web.Request) -> web.Response:
        redis_ok = [await _ping(s) for s in self._stores.values()]
        return _json(
            {
                "database": {"reachable": True},
                "server": {
                    "total_requests": self._stats.total_requests,
                    "connections_active": self._stats.active,
                    "connections_handled": self._stats.handled,
                    "connections_accepted": self._stats.handled + self._stats.active,
                    "connections_reading": 0,
                    "connections_writing": self._stats.active,
                    "connections_waiting": 0,
                },
                "configuration_hash": self.config.hash if self.config else NO_CONFIG_HASH,
                "aws_masker": {
                    "redis_reachable": all(redis_ok) if redis_ok else None,
                    "draining": self.draining,
                    "last_config_error": self.last_error,
                },
            }
        )

    async def handle_ready(self, _req: web.Request) -> web.Response:
        if self.draining:
            return _kong_error(503, "draining: the gateway is shutting down")
        if self.config is None:
            return _kong_error(503, "no configuration available (empty configuration present)")
        return _kong_error(200, "ready")

    async def handle_plugins_enabled(self, _req: web.Request) -> web.Response:
        return _json({"enabled_plugins": ["correlation-id", "request-id", *self.settings.plugins]})

    async def handle_post_config(self, req: web.Request) -> web.Response:
        body = await req.read()
        try:
            data = parse_body(body, req.content_type)
            if req.query.get("check_hash") in ("1", "true") and self.config is not None:
                current = load_config(data, dict(self.environ)).hash
                if current == self.config.hash:
                    return web.Response(status=304)
            config = self.apply(data)
        except ConfigError as exc:
            self.metrics.config_loads.labels("invalid").inc()
            log.warning("POST /config rejected: %s", exc)
            return _json(
                {
                    "code": 14,
                    "name": "invalid declarative configuration",
                    "message": f"declarative config is invalid: {'; '.join(exc.flat)}",
                    "fields": exc.fields,
                    "flattened_errors": exc.flat,
                },
                400,
            )
        except UnicodeDecodeError:
            return _kong_error(400, "body is not UTF-8")
        return _json({"configuration_hash": config.hash, "config": redact(config.raw)}, 201)

    async def handle_get_config(self, _req: web.Request) -> web.Response:
        if self.config is None:
            return _json({"config": None, "configuration_hash": NO_CONFIG_HASH})
        text = yaml.safe_dump(redact(self.config.raw), sort_keys=False)
        return _json({"config": text, "configuration_hash": self.config.hash})

    async def handle_metrics(self, _req: web.Request) -> web.Response:
        self.metrics.connections.set(self._stats.active)
        return web.Response(
            body=render(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    # --- proxy ---------------------------------------------------------------------------

    async def handle_proxy(self, req: web.Request) -> web.StreamResponse:
        self._stats.total_requests += 1
        self._stats.active += 1
        started = time.perf_counter()
        route_name = "-"
        code = 500
        try:
            config = self.config
            matched = config.match(req.path, req.method, req.host) if config else None
            if matched is None:
                code = 404
                return _kong_error(404, "no Route matched with those values")
            service, route, prefix = matched
            route_name = route.name or service.name
            resp = await self._proxy(req, service, route, prefix, started)
            code = resp.status
            return resp
        finally:
            self._stats.active -= 1
            self._stats.handled += 1
            self.metrics.requests.labels(route_name, str(code)).inc()
            log.info("%s %s route=%s status=%d", req.method, req.path, route_name, code)

    def _store_for(self, masker: MaskerSettings) -> MappingStore:
        store = self._stores.get(masker)
        if store is None:
            store = self._stores[masker] = RedisStore(_redis_settings(masker))
        return store

    async def _mask(
        self, masker: MaskerSettings, parts: list[bodies.ParsedBody]
    ) -> tuple[MappingStore, dict[str, str]] | web.Response:
        """Allocate masked ids for everything found; a 503 response when fail-secure refuses."""
        items = [item for p in parts for item in p.items]
        store = self._store_for(masker)
        if not items:
            return store, {}
        try:
            masked = await store.allocate(items)
        except StoreUnavailable as exc:
            self.metrics.masking_errors.labels("mask").inc()
            if masker.fail_secure:
                self.metrics.fail_secure.inc()
                log.warning(
                    "fail-secure: %d identifier(s) found and Redis is unreachable (%s)",
                    len(items),
                    exc,
                )
                return _kong_error(
                    503,
                    "masking unavailable: mapping store unreachable "
                    "(fail-secure), request not forwarded",
                )
            store = self._fallback
            masked = await store.allocate(items)
        counts = Counter(t for t, _ in items)
        for type_, n in counts.items():
            self.metrics.masked.labels(type_).inc(n)
        if counts:
            log.info("masked %s", dict(counts))
        return store, masked

    async def _proxy(
        self, req: web.Request, service: Any, route: Any, prefix: str, started: float
    ) -> web.StreamResponse:
        masker: MaskerSettings | None = route.masker or service.masker
        if (req.content_length or 0) > self.settings.max_body_bytes:
            # As nginx's client_max_body_size: refused before anything is read or forwarded.
            return _kong_error(413, "request entity too large")
        body = await req.read()
        if len(body) > self.settings.max_body_bytes:
            return _kong_error(413, "request entity too large")
        query = req.rel_url.raw_query_string
        scope: Scope = {}
        if masker is not None:
            if len(body) > masker.max_body_bytes:
                return _kong_error(413, "request body too large to mask")
            t0 = time.perf_counter()
            body_parsed = None
            if masker.mask_request_body and body:
                if len(body) > _THREAD_DETECT_BYTES:
                    # Large bodies are scanned off the event loop so that other requests keep
                    # moving while this one is searched.
                    body_parsed = await asyncio.to_thread(bodies.parse_body, body, req.content_type)
                else:
                    body_parsed = bodies.parse_body(body, req.content_type)
            query_parsed = bodies.parse_query(query) if masker.mask_query and query else None
            parts = [p for p in (body_parsed, query_parsed) if p is not None]
            self.metrics.detect_seconds.observe(time.perf_counter() - t0)
            outcome = await self._mask(masker, parts)
            if isinstance(outcome, web.Response):
                return outcome
            _store, masked = outcome
            if self.settings.fault_leak_type:
                leak = self.settings.fault_leak_type
                raw = {o: o for p in parts for t, o in p.items if t == leak}
                masked = {**masked, **raw}
            scope = {m.encode(): o.encode() for o, m in masked.items()}
            if body_parsed is not None and body_parsed.findings:
                body = bodies.rebuild(body_parsed, masked)
            if query_parsed is not None and query_parsed.findings:
                query = bodies.rebuild(query_parsed, masked).decode()
            self.metrics.masking_seconds.observe(time.perf_counter() - t0)
            self.metrics.request_bytes.inc(len(body))
        path = upstream_path(service, route, prefix, req.rel_url.raw_path)
        url = service.base_url + path + (f"?{query}" if query else "")
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _REQUEST_DROP}
        headers["Accept-Encoding"] = "identity"
        if masker is not None and masker.upstream_api_key:
            headers["x-api-key"] = masker.upstream_api_key
        forwarded = req.headers.get("X-Forwarded-For")
        remote = req.remote or ""
        headers["X-Forwarded-For"] = f"{forwarded}, {remote}" if forwarded else remote
        headers["X-Forwarded-Proto"] = req.scheme
        headers["X-Forwarded-Host"] = req.host
        t_up = time.perf_counter()
        try:
            upstream = await self.session().request(
                req.method,
                url,
                data=body if body else None,
                headers=headers,
                allow_redirects=False,
            )
        except TimeoutError:
            return _kong_error(504, "The upstream server is timing out")
        except (ClientError, OSError):
            return _kong_error(502, "An invalid response was received from the upstream server")
        async with upstream:
            upstream_latency = time.perf_counter() - t_up
            self.metrics.upstream_seconds.observe(upstream_latency)
            return await self._respond(req, upstream, masker, scope, started, upstream_latency)

    async def _respond(
        self,
        req: web.Request,
        upstream: Any,
        masker: MaskerSettings | None,
        scope: Scope,
        started: float,
        upstream_latency: float,
    ) -> web.StreamResponse:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _RESPONSE_DROP}
        headers["Via"] = f"kong/{KONG_VERSION}"
        headers["X-Kong-Upstream-Latency"] = str(int(upstream_latency * 1000))
        headers["X-Kong-Proxy-Latency"] = str(
            int((time.perf_counter() - started - upstream_latency) * 1000)
        )
        # Nothing to restore when the request masked nothing: the response passes untouched.
        unmasking = masker is not None and masker.unmask_response and bool(scope)
        length = upstream.content_length
        streaming = "event-stream" in upstream.headers.get("Content-Type", "")
        if length is not None and length <= _BUFFER_LIMIT and not streaming:
            data = await upstream.read()
            if unmasking:
                try:
                    data = self._unmask(scope, data)
                except Exception:
                    # Fail closed: an error status, never the placeholders as a 200.
                    self.metrics.masking_errors.labels("unmask").inc()
                    log.exception("response could not be unmasked; answering 502")
                    return _kong_error(502, "response could not be unmasked (fail-closed)")
            return web.Response(status=upstream.status, body=data, headers=headers)
        resp = web.StreamResponse(status=upstream.status, headers=headers)
        await resp.prepare(req)
        splitter: StreamUnmasker | SseRechunker = SseRechunker() if streaming else StreamUnmasker()
        try:
            async for chunk in upstream.content.iter_any():
                if not unmasking:
                    await resp.write(chunk)
                    continue
                ready = splitter.feed(chunk)
                if ready:
                    await resp.write(self._unmask(scope, ready))
            rest = splitter.flush()
            if rest:
                await resp.write(self._unmask(scope, rest) if unmasking else rest)
        except (ConnectionResetError, ClientError, asyncio.CancelledError):
            raise
        except Exception:
            # The status line is gone already: abort the connection so that the client sees a
            # broken stream (no final chunk), not a complete 200 with placeholders.
            self.metrics.masking_errors.labels("unmask").inc()
            log.exception("streamed response could not be unmasked; aborting it")
            if req.transport is not None:
                req.transport.abort()
            return resp
        await resp.write_eof()
        return resp

    def _unmask(self, scope: Scope, data: bytes) -> bytes:
        """Restore the ids of this request's scope in `data`; other masked ids stay."""
        ids = set(MASKED_ID_BYTES_RE.findall(data))
        if not ids:
            return data
        found = {i: scope[i] for i in ids if i in scope}
        misses = len(ids) - len(found)
        if misses:
            self.metrics.unmask_misses.inc(misses)
        self.metrics.unmasked.inc(len(found))
        return unmask_bytes(data, found) if found else data


async def _ping(store: MappingStore) -> bool:
    """A store ping bounded well under the HEALTHCHECK timeout: /status must answer even when
    Redis hangs (it reports `redis_reachable: false` then)."""
    try:
        return await asyncio.wait_for(store.ping(), timeout=0.5)
    except TimeoutError:
        return False


def _uses_plugin(data: dict[str, Any]) -> bool:
    plugins = list(data.get("plugins") or [])
    for svc in data.get("services") or []:
        if isinstance(svc, dict):
            plugins += svc.get("plugins") or []
    return any(isinstance(p, dict) and p.get("name") == PLUGIN_NAME for p in plugins)


def _redis_settings(m: MaskerSettings) -> RedisSettings:
    return RedisSettings(
        host=m.redis_host,
        port=m.redis_port,
        password=m.redis_password,
        db=m.redis_db,
        ttl=m.mapping_ttl,
        timeout=m.redis_timeout,
    )


async def run(env: Mapping[str, str]) -> None:
    """Run the gateway until SIGTERM, then drain and return."""
    settings = GatewaySettings.from_env(env)
    gw = Gateway(settings, environ=dict(env))
    if settings.fault_leak_type:
        log.critical(
            "TEST FAULT: identifiers of type %s are forwarded UNMASKED", settings.fault_leak_type
        )
    try:
        gw.load_initial()
    except ConfigError:
        raise SystemExit(1) from None
    server = Server(
        [
            Listener(gw.proxy_app(), *settings.proxy, drain_first=True),
            Listener(gw.admin_app(), *settings.admin),
            Listener(gw.status_app(), *settings.status),
        ],
        grace=settings.grace,
        on_drain=gw.start_drain,
        on_stopped=gw.close,
        ready=lambda: gw.ready,
    )
    # A config that arrives later by POST /config makes the gateway ready then.
    gw.on_ready = server.mark_ready
    await server.run()


def main() -> None:
    """Entry point of `python -m kongmasker_dataplane gateway`."""
    asyncio.run(run(os.environ))
