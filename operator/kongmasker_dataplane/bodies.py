"""Request bodies as the masking engine sees them: every string in a JSON document (keys and
values), every name and value of a form or query string, or the whole text otherwise.

Masking per JSON string (not over the raw bytes) means escapes such as `\\/` or `\\u0041`
cannot hide an identifier. A body with no identifier is forwarded byte for byte unchanged.

Context crosses strings the way a reader's eye does: a JSON value is judged under its key
(`{"BucketName": "x"}`; `"type": "account"` beside it counts as an account label too), and an
account id that an ARN anywhere in the body shows is masked wherever else it stands alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from .masking import Finding, accounts_in, find, replace_findings

__all__ = ["ParsedBody", "parse_body", "parse_query", "rebuild"]

_FORM_SPLIT = re.compile(r"([&=])")


@dataclass
class ParsedBody:
    """A body split into the strings that get masked, with what the engine found in each."""

    kind: str  # "json", "form" or "text"
    data: Any
    findings: dict[str, list[Finding]]

    @property
    def items(self) -> list[tuple[str, str]]:
        """Distinct (type, original) pairs found, in first-seen order."""
        seen: dict[tuple[str, str], None] = {}
        for fs in self.findings.values():
            for f in fs:
                seen[(f.type, f.value)] = None
        return list(seen)


def _walk_strings(obj: Any, visit: Callable[[str, str], None], label: str = "") -> None:
    """visit(string, label) for every string; a value's label is its key (plus "account" when
    a sibling value says the object is an account)."""
    if isinstance(obj, str):
        visit(obj, label)
    elif isinstance(obj, dict):
        extra = (
            " account"
            if any(
                isinstance(v, str) and len(v) < 32 and "account" in v.lower() for v in obj.values()
            )
            else ""
        )
        for k, v in obj.items():
            visit(k, "")
            _walk_strings(v, visit, f"{k}{extra}" if isinstance(k, str) else extra)
    elif isinstance(obj, list):
        for v in obj:
            _walk_strings(v, visit, label)


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {fn(k): _map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    return obj


def _scan(strings: list[tuple[str, str]]) -> dict[str, list[Finding]]:
    """Findings per distinct string. A string found under several labels keeps the reading
    that masks most (an account id under "accountId" is masked under any other key too)."""
    found: dict[str, list[Finding]] = {}
    seen: set[tuple[str, str]] = set()
    for s, label in strings:
        if (s, label) in seen:
            continue
        seen.add((s, label))
        fs = find(s, label)
        if s not in found or len(fs) > len(found[s]):
            found[s] = fs
    accounts = accounts_in(f for fs in found.values() for f in fs)
    if accounts:
        # Second pass, only over strings that hold one of the learned account ids.
        for s, label in seen:
            # A string whose own ARNs showed the ids has had them masked already.
            others = accounts - accounts_in(found[s])
            if any(a in s or a[:4] in s for a in others):
                fs = find(s, label, accounts)
                if len(fs) > len(found[s]):
                    found[s] = fs
    return {s: fs for s, fs in found.items() if fs}


def parse_body(body: bytes, content_type: str) -> ParsedBody:
    """Detect identifiers in a request body (pure; no allocation yet)."""
    ctype = content_type.split(";")[0].strip().lower()
    # JSON first whatever the declared type (curl -d sends JSON as a form); a body that does
    # not parse falls through to the next reading.
    if "json" in ctype or body.lstrip()[:1] in (b"{", b"["):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            pass
        else:
            strings: list[tuple[str, str]] = []
            _walk_strings(data, lambda s, label: strings.append((s, label)))
            return ParsedBody("json", data, _scan(strings))
    text = body.decode("utf-8", "surrogateescape")
    if ctype == "application/x-www-form-urlencoded":
        parts = _FORM_SPLIT.split(text)
        decoded = [unquote_plus(p, errors="surrogateescape") for p in parts[::2]]
        # Scan the decoded names and values and also the raw ones: what a form decoder would
        # not decode (a stray %) still must not leave unmasked.
        # A form value is labelled by its name, as a JSON value by its key.
        names = ["", *decoded[:-1]]
        labelled = [
            (v, names[i] if parts[2 * i - 1 : 2 * i] == ["="] else "")
            for i, v in enumerate(decoded)
        ]
        return ParsedBody("form", parts, _scan([*labelled, *((p, "") for p in parts[::2])]))
    return ParsedBody("text", text, _scan([(text, "")]))


def parse_query(query: str) -> ParsedBody:
    """Detect identifiers in a raw query string."""
    return parse_body(query.encode("utf-8", "surrogateescape"), "application/x-www-form-urlencoded")


def rebuild(parsed: ParsedBody, masked: dict[str, str]) -> bytes:
    """The body with every finding replaced by `masked[original]`."""

    def fn(s: str) -> str:
        fs = parsed.findings.get(s)
        return replace_findings(s, fs, masked) if fs else s

    if parsed.kind == "form":
        out = []
        for i, part in enumerate(parsed.data):
            if i % 2:
                out.append(part)  # a separator
                continue
            value = unquote_plus(part, errors="surrogateescape")
            out.append(
                quote_plus(fn(value), safe="", errors="surrogateescape")
                if value in parsed.findings
                else fn(part)
            )
        return "".join(out).encode("utf-8", "surrogateescape")
    if parsed.kind == "json":
        out = _map_strings(parsed.data, fn)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        )
    return fn(parsed.data).encode("utf-8", "surrogateescape")
