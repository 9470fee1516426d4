"""Mapping stores: where masked id <-> original pairs live.

`RedisStore` uses the aws-masker plugin's key schema, so a real Kong and this gateway can share
a Redis:

* `aws_masker:map:<MASKED_ID>` -> original
* `aws_masker:rev:<base64(original)>` -> masked id
* `aws_masker:cnt:<type>` -> last number handed out for the type (lower-case type)
* `aws_masker:stats:<YYYYMMDD>` -> hash type -> identifiers masked that day

Allocation is one Lua script per identifier (run in one pipeline per request), so two gateways
masking the same original at the same time still agree on one masked id. Every use of a mapping
refreshes its TTL, so ids in active use do not expire mid-conversation.

`MemoryStore` has the same interface and serves the non-fail-secure fallback and unit tests.
Errors talking to Redis surface as `StoreUnavailable`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

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

# KEYS[1] = rev key, KEYS[2] = counter key. ARGV = type, original, ttl, map prefix.
_ALLOCATE = """
local masked = redis.call('GET', KEYS[1])
if not masked then
  local n = redis.call('INCR', KEYS[2])
  masked = string.format('AWS_%s_%03d', ARGV[1], n)
end
redis.call('SET', KEYS[1], masked, 'EX', ARGV[3])
redis.call('SET', ARGV[4] .. masked, ARGV[2], 'EX', ARGV[3])
return masked
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
        day = time.strftime("%Y%m%d", time.gmtime())
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for type_, original in pairs:
                    await self._script(
                        keys=[rev_key(original), f"{PREFIX}cnt:{type_.lower()}"],
                        args=[type_, original, self.settings.ttl, PREFIX + "map:"],
                        client=pipe,
                    )
                for type_, _original in pairs:
                    pipe.hincrby(f"{PREFIX}stats:{day}", type_.lower(), 1)
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return {
            original: str(masked) for (_t, original), masked in zip(pairs, results, strict=False)
        }

    async def lookup(self, masked_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(masked_ids))
        if not ids:
            return {}
        try:
            values = await self._redis.mget([PREFIX + "map:" + i for i in ids])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        return {i: str(v) for i, v in zip(ids, values, strict=True) if v is not None}

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
