"""Mapping stores: where masked id <-> original pairs live.

`RedisStore` uses the aws-masker plugin's key schema, so a real Kong and this gateway can share
a Redis:

* `aws_masker:map:<MASKED_ID>` -> original
* `aws_masker:rev:<base64(original)>` -> masked id
* `aws_masker:cnt:<type>` -> last number handed out for the type (lower-case type)
* `aws_masker:stats:<YYYYMMDD>` -> hash type -> identifiers masked that day

Allocation is one Lua script call per request (atomic, one round trip), so two gateways masking
the same original at the same time still agree on one masked id. Every use of a mapping
refreshes its TTL, so ids in active use do not expire mid-conversation.

`MemoryStore` has the same interface and serves the non-fail-secure fallback and unit tests.
Errors talking to Redis surface as `StoreUnavailable`.

A Redis that cannot be reached (connection refused or reset, timeout, still loading its
dataset) is retried with a small backoff for up to `retry_seconds`
(KONG_REDIS_RETRY_SECONDS, default 5): a Redis restart (the operator's graceful restart) is
ridden out by the requests in flight. Past the window the error stands (fail-secure: 503).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .masking import LocalAllocator

__all__ = [
    "PREFIX",
    "MappingStore",
    "MemoryStore",
    "RedisSettings",
    "RedisStore",
    "StoreUnavailable",
]

PREFIX = "aws_masker:"
DEFAULT_RETRY_SECONDS = 5.0
_RETRY_FIRST, _RETRY_CAP = 0.05, 0.5
_RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)
"""Redis is (briefly) not there: worth another try. BusyLoadingError is a ConnectionError."""

T = TypeVar("T")


def _retry_seconds_from_env() -> float:
    try:
        return max(0.0, float(os.environ.get("KONG_REDIS_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


# One call masks every identifier of a request (one round trip, atomic).
# KEYS = rev key, counter key for each item; ARGV = ttl, map-key prefix, stats key, then the
# type (upper-case, for the id) and original of each item. Returns the masked ids in order.
_ALLOCATE = """
local ttl, map_prefix, stats = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 1, #KEYS / 2 do
  local rev, cnt = KEYS[2 * i - 1], KEYS[2 * i]
  local type_, original = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local masked = redis.call('GET', rev)
  if not masked then
    masked = string.format('AWS_%s_%03d', type_, redis.call('INCR', cnt))
  end
  redis.call('SET', rev, masked, 'EX', ttl)
  redis.call('SET', map_prefix .. masked, original, 'EX', ttl)
  redis.call('HINCRBY', stats, string.lower(type_), 1)
  out[i] = masked
end
return out
"""


class StoreUnavailable(Exception):
    """The mapping store cannot be reached or answered with an error."""


class MappingStore(Protocol):
    """What the gateway needs from a store."""

    async def allocate(self, items: Iterable[tuple[str, str]]) -> dict[str, str]:
        """(type, original) pairs -> {original: masked id}, creating mappings as needed."""
        ...

    async def lookup(self, masked_ids: Iterable[str]) -> dict[str, str]:
        """Known masked ids -> originals (unknown ids are absent)."""
        ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class RedisSettings:
    """Connection settings of the plugin's Redis (from the aws-masker plugin config)."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = None
    db: int = 0
    ttl: int = 604800
    timeout: float = 2.0
    retry_seconds: float = field(default_factory=_retry_seconds_from_env)
    """How long an unreachable Redis is retried before StoreUnavailable (0: no retry)."""


def rev_key(original: str) -> str:
    """The reverse-index key of an original (base64 keeps any byte safe in a key)."""
    return PREFIX + "rev:" + base64.b64encode(original.encode()).decode()


class RedisStore:
    """Mappings in Redis with the plugin's key schema (see the module docstring)."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._redis = aioredis.Redis(
            host=settings.host,
            port=settings.port,
            password=settings.password or None,
            db=settings.db,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            decode_responses=True,
            # One quick retry: redis-py's default backoff would hold a request for seconds
            # before fail-secure can answer 503.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), 1),
        )
        self._script = self._redis.register_script(_ALLOCATE)

    async def allocate(self, items: Iterable[tuple[str, str]]) -> dict[str, str]:
        pairs = list(dict.fromkeys(items))
        if not pairs:
            return {}
        keys: list[str] = []
        args: list[str | int] = [
            self.settings.ttl,
            PREFIX + "map:",
            PREFIX + "stats:" + time.strftime("%Y%m%d", time.gmtime()),
        ]
        for type_, original in pairs:
            keys += [rev_key(original), f"{PREFIX}cnt:{type_.lower()}"]
            args += [type_, original]
        masked = await self._retrying(lambda: self._script(keys=keys, args=args))
        return {original: str(m) for (_t, original), m in zip(pairs, masked, strict=True)}

    async def lookup(self, masked_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(masked_ids))
        if not ids:
            return {}
        keys = [PREFIX + "map:" + i for i in ids]
        values = await self._retrying(lambda: self._redis.mget(keys))
        return {i: str(v) for i, v in zip(ids, values, strict=True) if v is not None}

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, again after a short backoff while Redis is unreachable, until the retry
        window has passed; then (or on any other Redis error) StoreUnavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.retry_seconds
        delay = _RETRY_FIRST
        while True:
            try:
                return await call()
            except _RETRYABLE as exc:
                left = deadline - loop.time()
                if left <= 0:
                    raise StoreUnavailable(type(exc).__name__) from exc
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, _RETRY_CAP)
            except RedisError as exc:
                raise StoreUnavailable(type(exc).__name__) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


class MemoryStore:
    """Process-local mappings (no TTL). Used when fail_secure is off and Redis is down, so the
    request is still masked rather than passed through raw."""

    def __init__(self) -> None:
        self._alloc = LocalAllocator()

    async def allocate(self, items: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {original: self._alloc(type_, original) for type_, original in items}

    async def lookup(self, masked_ids: Iterable[str]) -> dict[str, str]:
        rev = self._alloc.reverse
        return {i: rev[i] for i in masked_ids if i in rev}

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
