"""The masking test vectors: one file, owned by the operator, read by three consumers.

    masking_vectors.json ──> the operator's canary (cases marked "canary")
                        ├──> the engine's unit tests (every case)
                        └──> the gateway's integration tests (every case, through HTTP)

A positive case is a text and the raw identifiers in it that must never reach the upstream;
its `type` is this file's own vocabulary (lower-case, hyphenated), not any data plane's id
names, so the canary can judge a plugin it did not write. A negative case is a text in which
nothing may be masked. Keeping all three consumers on one file means they cannot drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["NegativeCase", "PositiveCase", "canary_cases", "load", "negatives", "positives"]

_FILE = "masking_vectors.json"


@dataclass(frozen=True, slots=True)
class PositiveCase:
    id: str
    type: str
    text: str
    identifiers: tuple[str, ...]
    canary: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NegativeCase:
    id: str
    text: str
    why: str = ""
    tags: tuple[str, ...] = ()


@cache
def load() -> tuple[tuple[PositiveCase, ...], tuple[NegativeCase, ...]]:
    """Both lists, parsed once; a malformed file fails loudly here, not in a consumer."""
    raw = json.loads(resources.files("kongmasker.api").joinpath(_FILE).read_text("utf-8"))
    pos = tuple(
        PositiveCase(
            id=c["id"],
            type=c["type"],
            text=c["text"],
            identifiers=tuple(c["identifiers"]),
            canary=bool(c.get("canary", False)),
            tags=tuple(c.get("tags", ())),
        )
        for c in raw["positives"]
    )
    neg = tuple(
        NegativeCase(
            id=c["id"], text=c["text"], why=c.get("why", ""), tags=tuple(c.get("tags", ()))
        )
        for c in raw["negatives"]
    )
    return pos, neg


def positives() -> tuple[PositiveCase, ...]:
    return load()[0]


def negatives() -> tuple[NegativeCase, ...]:
    return load()[1]


def canary_cases() -> tuple[PositiveCase, ...]:
    """The cases the operator's canary sends through a live stack, one per type."""
    return tuple(c for c in positives() if c.canary)
