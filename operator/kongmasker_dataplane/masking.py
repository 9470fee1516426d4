"""The masking engine: finds AWS identifiers in text and swaps them for `AWS_<TYPE>_<NNN>` ids.

Pure code, no I/O. The gateway supplies an allocator backed by Redis; tests and the operator's
masking canary use the in-memory `LocalAllocator`.

    >>> result = mask("restart i-1234567890abcdef0 please")
    >>> result.text
    'restart AWS_EC2_001 please'
    >>> unmask(result.text, result.mapping)
    'restart i-1234567890abcdef0 please'

How matches are chosen (the original plugin's defects are the reason for each rule):

* Every rule proposes candidate spans over the whole text; candidates are then accepted longest
  first (ties: the more specific rule, then the earlier position) and a candidate overlapping an
  accepted one is dropped. So an ARN is masked whole and never an id inside it, and `ami-...`
  can never turn into `amAWS_EC2_001`.
* Rules are anchored on both sides (no ASCII letter, digit, `_` or `-` around an id; Hangul
  and punctuation are boundaries), and hex ids accept exactly 8 or 17 hex digits: an id is
  masked whole or not at all, never partially.
* Context crosses a little further than the match: a label (the JSON key a value sits under)
  is read as if written before the value, and an account id that an ARN, ECR or SQS address
  in the same text shows is masked wherever it stands alone.
* The prefilter: per text each anchor literal and shared hint is tested once; a rule runs only
  when one of its anchors or its hint is present, and then only in windows around it.
* Context-dependent types (S3 bucket, RDS / Redshift / ElastiCache names, Glue job, account id,
  KMS key id) are masked only next to the context that makes them identifiers; see
  docs/dataplane.md for the exact context rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .rules import EXAMPLES, RULES, TYPES, Rule

__all__ = [
    "EXAMPLES",
    "MASKED_ID_BYTES_RE",
    "MASKED_ID_RE",
    "TYPES",
    "Finding",
    "LocalAllocator",
    "MaskResult",
    "StreamUnmasker",
    "accounts_in",
    "find",
    "hold_back",
    "mask",
    "masked_id",
    "masked_ids_in",
    "replace_findings",
    "unmask",
    "unmask_bytes",
]

Allocator = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One identifier found in a text: its type, span and original value."""

    type: str
    start: int
    end: int
    value: str


_TYPE_ALT = "|".join(sorted(TYPES, key=len, reverse=True))
#: A masked id as the engine writes it (`AWS_EC2_001`; more digits after 999). No boundary is
#: required before it: in a JSON response it often follows an escape (`\nAWS_EC2_001`), and a
#: model may glue it to a word. After it only a digit is excluded (that is a longer id).
MASKED_ID_RE = re.compile(rf"AWS_(?:{_TYPE_ALT})_\d{{3,}}(?!\d)")
MASKED_ID_BYTES_RE = re.compile(MASKED_ID_RE.pattern.encode())


def masked_id(type_: str, number: int) -> str:
    """The masked id for the `number`-th original of `type_` (`AWS_EC2_001`)."""
    return f"AWS_{type_}_{number:03d}"


# --- detection ---------------------------------------------------------------------------


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


_TOKEN_ENDS = " \t\n\"'`<>()[]{},;|\\"


def _windows(low: str, rule: Rule, anchors: Iterable[str]) -> list[tuple[int, int]]:
    """Merged [start, end) windows around the `anchors` of `rule` in the lower-cased text."""
    spans: list[tuple[int, int]] = []
    n = len(low)
    for anchor in anchors:
        i = low.find(anchor)
        while i >= 0:
            start = max(0, i - rule.before)
            if rule.token_start:
                # From the start of the token that holds the anchor (a host name is one
                # token): far less text for the host patterns, which have no literal prefix.
                start = max([start, *(low.rfind(c, start, i) for c in _TOKEN_ENDS)])
            spans.append((start, min(n, i + len(anchor) + rule.after)))
            i = low.find(anchor, i + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _scan(rule: Rule, text: str, start: int, end: int) -> Iterable[tuple[int, int, int, str]]:
    """Candidates of one rule in text[start:end] (lookbehinds still see text before start)."""
    pos = start
    while True:
        m = rule.regex.search(text, pos, end)
        if m is None:
            return
        if (
            rule.not_after is not None
            and m.start() > 0
            and rule.not_after.match(text, m.start() - 1)
        ):
            pos = m.start() + 1
            continue
        pos = max(m.end(), m.start() + 1)
        if m.end() == end < len(text):
            continue  # it may run on past the window: never mask a possibly cut id
        if rule.check is not None and not rule.check(text, m):
            continue
        span_start, span_end = m.span(rule.group)
        if span_start == span_end:
            continue
        type_ = rule.classify(m) if rule.classify is not None else rule.type
        yield span_start, span_end, rule.priority, type_


def _at_anchors(
    rule: Rule, text: str, low: str, anchors: Iterable[str]
) -> Iterable[tuple[int, int, int, str]]:
    """Candidates of a rule whose pattern starts with one of its anchors (then the further
    items of a list, when the rule has `more`)."""
    for anchor in anchors:
        i = low.find(anchor)
        while i >= 0:
            m = rule.regex.match(text, i)
            while m is not None and (rule.check is None or rule.check(text, m)):
                span_start, span_end = m.span(rule.group)
                type_ = rule.classify(m) if rule.classify is not None else rule.type
                yield span_start, span_end, rule.priority, type_
                m = rule.more.match(text, m.end()) if rule.more is not None else None
            i = low.find(anchor, i + 1)


def _candidates(text: str) -> Iterable[tuple[int, int, int, str]]:
    """(start, end, priority, type) for every rule's candidate that passes its check."""
    # Lower-case ASCII only, so that indexes stay those of `text`.
    ascii_only = text.isascii()
    low = text.lower() if ascii_only else text.translate(_ASCII_LOWER)
    n = len(text)
    # The one-pass prefilter: each distinct anchor literal and each shared hint is tested once
    # per text, and only the rules they trigger run (non-ASCII anchors only in non-ASCII text).
    present = {a for a in (_ASCII_ANCHORS if ascii_only else _ALL_ANCHORS) if a in low}
    hints: dict[int, bool] = {}
    windows: dict[tuple[object, ...], list[tuple[int, int]]] = {}
    for rule in _ANCHORED if present else ():
        if n < rule.min_length:
            continue
        anchors = [a for a in rule.anchors if a in present]
        if not anchors:
            continue
        if rule.at_anchor:
            yield from _at_anchors(rule, text, low, anchors)
        else:
            key = (rule.anchors, rule.before, rule.after, rule.token_start)
            if key not in windows:
                windows[key] = _windows(low, rule, anchors)
            for a, b in windows[key]:
                yield from _scan(rule, text, a, b)
    for rule in _UNANCHORED:
        # The skips matter for the many short strings of a JSON body ("model", "user", ...).
        if n < rule.min_length:
            continue
        if rule.hint is not None:
            hint_id = id(rule.hint)
            if hint_id not in hints:
                hint = rule.hint
                hints[hint_id] = bool(
                    hint.search(text) if isinstance(hint, re.Pattern) else hint(text)
                )
            if not hints[hint_id]:
                continue
        if rule.needle is not None and rule.needle not in text:
            continue
        if rule.windows is not None:
            windows_id = (id(rule.windows),)
            if windows_id not in windows:
                windows[windows_id] = rule.windows(text)
            for a, b in windows[windows_id]:
                yield from _scan(rule, text, a, b)
            continue
        yield from _scan(rule, text, 0, n)


_ANCHORED = tuple(r for r in RULES if r.anchors)
_UNANCHORED = tuple(r for r in RULES if not r.anchors)
_ALL_ANCHORS = frozenset(a for rule in RULES for a in rule.anchors)
_ASCII_ANCHORS = frozenset(a for a in _ALL_ANCHORS if a.isascii())
# Where an ARN, ECR or SQS address shows an account id (the value's first 12-digit field).
_ACCOUNT_IN_VALUE = re.compile(r"(?:^|[:/])(\d{12})(?=[:/.]|$)")
_ACCOUNT_TYPES = frozenset({"ECR_URI", "SQS_QUEUE"})
# A label (a JSON key, or "type": "account" beside it) that can give context to its value.
_LABEL_HINT = re.compile(
    r"(?i)bucket|account|owner|principal|rds|db|redshift|cluster|cache|replication|glue|job"
    r"|kms|key|secret|session|security|token|distribution|cloudfront|버킷|계정|글루|배포"
)


def accounts_in(findings: Iterable[Finding]) -> set[str]:
    """The account ids that ARNs, ECR and SQS addresses among `findings` show."""
    out: set[str] = set()
    for f in findings:
        if f.type in _ACCOUNT_TYPES or f.value.startswith("arn:"):
            m = _ACCOUNT_IN_VALUE.search(f.value)
            if m is not None:
                out.add(m.group(1))
    return out


def _account_candidates(text: str, accounts: Iterable[str]) -> list[tuple[int, int, int, str]]:
    """Every standalone occurrence of a known account id (also written 1234-5678-9012)."""
    out = []
    n = len(text)
    for acct in accounts:
        for form in (acct, f"{acct[:4]}-{acct[4:8]}-{acct[8:]}"):
            i = text.find(form)
            while i >= 0:
                end = i + len(form)
                # Standalone: no ASCII identifier character or `-` on either side.
                if (i == 0 or text[i - 1] not in _ID_CHARS) and (
                    end == n or text[end] not in _ID_CHARS
                ):
                    out.append((i, end, 40, "ACCOUNT_ID"))
                i = text.find(form, i + 1)
    return out


_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def find(text: str, label: str = "", accounts: Iterable[str] = ()) -> list[Finding]:
    """Every identifier in `text`, non-overlapping, in text order.

    `label` is context the text was found under (a JSON key): a value is also judged as if
    written `label: value`, so `{"BucketName": "x"}` masks x. `accounts` are account ids
    learned elsewhere in the same document; ids that ARNs in `text` show are learned here.
    Every standalone occurrence of a learned account id is masked.

    Longest candidates win, then the more specific rule, then the earlier one; a candidate that
    overlaps an accepted one is dropped whole (never trimmed, so no partial masks).
    """
    if label and _LABEL_HINT.search(label):
        prefix = f"{label}: "
        shift = len(prefix)
        inner = find(prefix + text, accounts=accounts)
        return [
            Finding(f.type, f.start - shift, f.end - shift, f.value)
            for f in inner
            if f.start >= shift
        ]
    candidates = list(_candidates(text))
    known = set(accounts)
    for start, end, _p, type_ in candidates:
        if type_ in _ACCOUNT_TYPES or text.startswith("arn:", start):
            m = _ACCOUNT_IN_VALUE.search(text[start:end])  # (`^` needs the value's own start)
            if m is not None:
                known.add(m.group(1))
    if known:
        candidates += _account_candidates(text, known)
    ranked = sorted(candidates, key=lambda c: (c[0] - c[1], c[2], c[0]))
    taken: list[tuple[int, int]] = []
    accepted: list[Finding] = []
    for start, end, _prio, type_ in ranked:
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue
        taken.append((start, end))
        accepted.append(Finding(type_, start, end, text[start:end]))
    accepted.sort(key=lambda f: f.start)
    return accepted


def replace_findings(text: str, findings: list[Finding], masked: Mapping[str, str]) -> str:
    """`text` with each finding (in text order) replaced by `masked[finding.value]`."""
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(masked[f.value])
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


# --- masking with an allocator -----------------------------------------------------------


@dataclass
class LocalAllocator:
    """In-memory allocator: the same original always gets the same masked id, numbered per
    type from 001. The gateway uses the Redis store instead; this one serves tests, the canary
    and the gateway's non-fail-secure fallback."""

    forward: dict[str, str] = field(default_factory=dict)
    reverse: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def __call__(self, type_: str, original: str) -> str:
        if original in self.forward:
            return self.forward[original]
        n = self.counters.get(type_, 0) + 1
        self.counters[type_] = n
        masked = masked_id(type_, n)
        self.forward[original] = masked
        self.reverse[masked] = original
        return masked


@dataclass(frozen=True)
class MaskResult:
    """A masked text, the masked id -> original mapping it used, and what was found."""

    text: str
    mapping: dict[str, str]
    findings: list[Finding]


def mask(text: str, allocate: Allocator | None = None) -> MaskResult:
    """Mask every identifier in `text`. `allocate(type, original) -> masked id` defaults to a
    fresh `LocalAllocator`, so ids are numbered from 001 within this call."""
    allocate = allocate if allocate is not None else LocalAllocator()
    findings = find(text)
    masked = {f.value: allocate(f.type, f.value) for f in findings}
    return MaskResult(
        replace_findings(text, findings, masked), {m: o for o, m in masked.items()}, findings
    )


# --- unmasking ---------------------------------------------------------------------------


def masked_ids_in(text: str) -> set[str]:
    """The distinct masked ids in `text`."""
    return set(MASKED_ID_RE.findall(text))


def unmask(text: str, mapping: Mapping[str, str]) -> str:
    """`text` with each masked id known to `mapping` replaced by its original; unknown ids stay
    as they are (the caller counts them as misses)."""
    return MASKED_ID_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)


def unmask_bytes(data: bytes, mapping: Mapping[bytes, bytes]) -> bytes:
    """`unmask` for a byte stream (masked ids are ASCII, so no decoding is needed)."""
    return MASKED_ID_BYTES_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), data)


# A tail that may be the beginning of a masked id continuing in the next chunk.
_PARTIAL_TAIL = re.compile(rb"(?:A|AW|AWS|AWS_[A-Z0-9_]*)\Z")
_PARTIAL_TAIL_STR = re.compile(r"(?:A|AW|AWS|AWS_[A-Z0-9_]*)\Z")
_MAX_ID = max(len(t) for t in TYPES) + 16


def hold_back(text: str) -> tuple[str, str]:
    """(safe, held): `held` is a tail of `text` that may be the start of a masked id that
    continues in the next piece of a stream; `safe` can be unmasked now."""
    m = _PARTIAL_TAIL_STR.search(text, max(0, len(text) - _MAX_ID))
    if m is None:
        return text, ""
    return text[: m.start()], text[m.start() :]


class StreamUnmasker:
    """Splits a response byte stream so that no masked id is cut in two.

    `feed(chunk)` returns the bytes that are safe to unmask now; a tail that could be the start
    of a masked id is held back until the next chunk (or `flush()` at the end). The caller then
    looks the ids up (`MASKED_ID_BYTES_RE`) and calls `unmask_bytes`.
    """

    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        m = _PARTIAL_TAIL.search(data, max(0, len(data) - _MAX_ID))
        if m is None:
            self._held = b""
            return data
        self._held = data[m.start() :]
        return data[: m.start()]

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        return data
