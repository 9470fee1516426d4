"""The backup manifest (manifest.json): what a backup holds and the facts validation checks.

    {
      "formatVersion": 1,
      "backup": {"namespace": "default", "name": "nightly-1", "uid": "..."},
      "stack": {"namespace": "default", "name": "demo", "uid": "...", "generation": 3},
      "startedAt": "2026-11-26T15:00:00Z", "completedAt": "...", "durationSeconds": 1.9,
      "redis": {"version": "7.0.15", "image": "kongmasker/redis:dev", "rdbVersion": 10,
                "db": 0, "declaredKeys": 100003, "keys": 100003,
                "prefixes": {"aws_masker:map:": {"keys": 50000, "ttl": {"lt7d": 50000}}}},
      "files": [{"path": "redis/dump.rdb", "size": 4096, "sha256": "..."}, ...]
    }

Key counts are grouped by prefix (a key's text up to its second ":", so
"aws_masker:map:EC2_001" counts under "aws_masker:map:") and by TTL class (the remaining time
to live when the snapshot was counted). The classes let a later validation tell a key that
may have expired since (its class started before the elapsed time) from a missing one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kongmasker.api.backup import FORMAT_VERSION

RDB_PATH = "redis/dump.rdb"
KONG_CONFIG = "config/kong.yml"
NGINX_CONFIG = "config/nginx.conf"
STACK_SPEC = "stack/spec.yaml"

TTL_CLASSES: tuple[tuple[str, int], ...] = (
    ("lt1m", 60),
    ("lt1h", 3600),
    ("lt1d", 86400),
    ("lt7d", 604800),
    ("lt30d", 2592000),
)
"""(class, upper bound in seconds) in increasing order; beyond: "gte30d"; no TTL: "persistent"."""
LONGEST, PERSISTENT = "gte30d", "persistent"
_LOWER_BOUND = {
    name: (TTL_CLASSES[i - 1][1] if i else 0) for i, (name, _) in enumerate(TTL_CLASSES)
}
_LOWER_BOUND[LONGEST] = TTL_CLASSES[-1][1]


def ttl_class(pttl_ms: int) -> str:
    """The class of a key from its PTTL (-1: no expiry)."""
    if pttl_ms < 0:
        return PERSISTENT
    for name, bound in TTL_CLASSES:
        if pttl_ms < bound * 1000:
            return name
    return LONGEST


@dataclass(frozen=True)
class PrefixStats:
    keys: int
    ttl: dict[str, int] = field(default_factory=dict)

    def may_expire_within(self, seconds: float) -> int:
        """Keys of this prefix whose TTL could have run out `seconds` after counting."""
        return sum(
            n for cls, n in self.ttl.items() if cls in _LOWER_BOUND and _LOWER_BOUND[cls] < seconds
        )

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "ttl": dict(sorted(self.ttl.items()))}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PrefixStats:
        return cls(
            keys=int(raw["keys"]), ttl={str(k): int(v) for k, v in (raw.get("ttl") or {}).items()}
        )


KeyCounts = dict[str, PrefixStats]


def total_keys(counts: Mapping[str, PrefixStats]) -> int:
    return sum(p.keys for p in counts.values())


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str, data: bytes) -> FileEntry:
        return cls(path, len(data), hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Identity:
    namespace: str
    name: str
    uid: str = ""
    generation: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "uid": self.uid}
        if self.generation:
            out["generation"] = self.generation
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Identity:
        return cls(
            namespace=str(raw.get("namespace", "")),
            name=str(raw.get("name", "")),
            uid=str(raw.get("uid", "")),
            generation=int(raw.get("generation", 0) or 0),
        )


@dataclass(frozen=True)
class RedisFacts:
    version: str
    image: str
    rdb_version: int
    db: int
    declared_keys: int
    prefixes: KeyCounts

    @property
    def keys(self) -> int:
        return total_keys(self.prefixes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "image": self.image,
            "rdbVersion": self.rdb_version,
            "db": self.db,
            "declaredKeys": self.declared_keys,
            "keys": self.keys,
            "prefixes": {p: s.to_dict() for p, s in sorted(self.prefixes.items())},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RedisFacts:
        return cls(
            version=str(raw["version"]),
            image=str(raw["image"]),
            rdb_version=int(raw["rdbVersion"]),
            db=int(raw.get("db", 0)),
            declared_keys=int(raw["declaredKeys"]),
            prefixes={str(p): PrefixStats.from_dict(s) for p, s in raw["prefixes"].items()},
        )


@dataclass(frozen=True)
class Manifest:
    backup: Identity
    stack: Identity
    started_at: str
    completed_at: str
    duration_seconds: float
    redis: RedisFacts
    files: tuple[FileEntry, ...]
    format_version: int = FORMAT_VERSION
    signature: str = ""
    """HMAC-SHA256 (hex) of the manifest without this field, if the backup was signed."""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def signed_part(self) -> bytes:
        """The canonical bytes a signature covers: everything but the signature."""
        body = self.to_dict()
        body.pop("signature", None)
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def sign(self, key: bytes) -> Manifest:
        digest = hmac.new(key, self.signed_part(), hashlib.sha256).hexdigest()
        return dataclasses.replace(self, signature=digest)

    def signature_valid(self, key: bytes) -> bool:
        expected = hmac.new(key, self.signed_part(), hashlib.sha256).hexdigest()
        return bool(self.signature) and hmac.compare_digest(expected, self.signature)

    def to_dict(self) -> dict[str, Any]:
        out = self._body()
        if self.signature:
            out["signature"] = {"algorithm": "HMAC-SHA256", "value": self.signature}
        return out

    def _body(self) -> dict[str, Any]:
        return {
            "formatVersion": self.format_version,
            "backup": self.backup.to_dict(),
            "stack": self.stack.to_dict(),
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
            "durationSeconds": round(self.duration_seconds, 3),
            "redis": self.redis.to_dict(),
            "files": [f.to_dict() for f in self.files],
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse manifest.json; raises ValueError (with a reason) if it is malformed."""
        try:
            raw = json.loads(data)
            if int(raw["formatVersion"]) != FORMAT_VERSION:
                raise ValueError(f"unsupported formatVersion {raw['formatVersion']}")
            files = tuple(
                FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in raw["files"]
            )
            return cls(
                backup=Identity.from_dict(raw["backup"]),
                stack=Identity.from_dict(raw["stack"]),
                started_at=str(raw["startedAt"]),
                completed_at=str(raw["completedAt"]),
                duration_seconds=float(raw["durationSeconds"]),
                redis=RedisFacts.from_dict(raw["redis"]),
                files=files,
                format_version=int(raw["formatVersion"]),
                signature=str((raw.get("signature") or {}).get("value") or ""),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"manifest is malformed: {type(exc).__name__}: {exc}") from exc


def compare_counts(
    expected: Mapping[str, PrefixStats], found: Mapping[str, PrefixStats], elapsed: float
) -> list[str]:
    """Differences between a manifest's counts and a reload's, `elapsed` seconds later.

    A prefix may have fewer keys only by keys whose TTL class allows them to have expired
    by now; more keys, or a prefix the manifest does not list, is always a difference.
    """
    problems = []
    for prefix in sorted(set(expected) | set(found)):
        want = expected.get(prefix, PrefixStats(0))
        have = found.get(prefix, PrefixStats(0)).keys
        label = prefix or "(no prefix)"
        if have > want.keys:
            problems.append(f"{label}: {have} keys, manifest says {want.keys}")
        elif want.keys - have > want.may_expire_within(elapsed):
            problems.append(
                f"{label}: {have} keys, manifest says {want.keys} "
                f"(at most {want.may_expire_within(elapsed)} could have expired)"
            )
    return problems
