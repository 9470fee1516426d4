"""Masking mappings in the aws-masker plugin's key schema, written straight into a Redis.

Shared by the backup integration tests, e2e tests and the benchmark:
`aws_masker:map:<MASKED_ID>` -> original and `aws_masker:rev:<base64(original)>` -> masked id
(both with TTLs), `aws_masker:cnt:<type>` counters (no TTL), `aws_masker:stats:<day>` hashes.
"""

from __future__ import annotations

import base64

import redis

TYPES = ("EC2", "S3", "IAM", "VPC", "SG")
# Three TTL classes so that restores can be checked class by class.
TTLS = (604800 - 60, 86400 - 60, 3000)


def fill_mappings(
    client: redis.Redis, count: int, *, seed: str = "a", batch: int = 5000
) -> dict[str, int]:
    """Write `count` mappings (map + rev pair each), counters and a stats hash; returns the
    expected key count per prefix."""
    per_type: dict[str, int] = dict.fromkeys(TYPES, 0)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        kind = TYPES[i % len(TYPES)]
        per_type[kind] += 1
        masked = f"{kind}_{per_type[kind]:07d}"
        original = f"{kind.lower()}-{seed}-{i:08x}-0123456789abcdef"
        ttl = TTLS[i % len(TTLS)]
        pipe.set(f"aws_masker:map:{masked}", original, ex=ttl)
        rev = base64.b64encode(original.encode()).decode()
        pipe.set(f"aws_masker:rev:{rev}", masked, ex=ttl)
        if (i + 1) % batch == 0:
            pipe.execute()
    for kind, n in per_type.items():
        pipe.set(f"aws_masker:cnt:{kind.lower()}", n)
    pipe.hset("aws_masker:stats:20261126", mapping={k.lower(): v for k, v in per_type.items()})
    pipe.execute()
    return {
        "aws_masker:map:": count,
        "aws_masker:rev:": count,
        "aws_masker:cnt:": len(TYPES),
        "aws_masker:stats:": 1,
    }


def snapshot_keys(client: redis.Redis) -> dict[bytes, tuple[bytes | None, int]]:
    """Every string key -> (value, TTL class in hours); hashes map to their field count.

    TTLs are compared in whole hours: a restore must bring back each key with its TTL,
    give or take the minutes the test itself takes.
    """
    out: dict[bytes, tuple[bytes | None, int]] = {}
    keys = list(client.scan_iter(count=5000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.ttl(key)
    answers = pipe.execute()
    values = pipe
    for key, kind in zip(keys, answers[0::2], strict=True):
        values.hlen(key) if kind == b"hash" else values.get(key)
    contents = values.execute()
    for key, ttl, content in zip(keys, answers[1::2], contents, strict=True):
        hours = -1 if ttl < 0 else round(ttl / 3600)
        out[key] = (content if isinstance(content, bytes) else str(content).encode(), hours)
    return out
