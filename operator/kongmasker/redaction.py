"""The one redaction point: Secret values never reach status, Events or logs.

    adapters/kube.py read_secret --remember(value)--> the registry (process-wide)
    KongMaskerError(message)  --scrub--> .message / str(error)   (status, Events, retries)
    logging (RedactingFilter on the root handlers) --scrub--> every log line and traceback

Every error the operator reports is a KongMaskerError (adapters map foreign errors at their
boundary), so scrubbing in its constructor covers status and Events; the log filter covers
what other code (kopf, libraries, tracebacks of the foreign cause) writes. Both call `scrub`.

A value is scrubbed as it is and in the spellings other programs echo it in (JSON/Go
escapes, Python repr), and so are its pieces between control or quote characters (Docker
may cut an env value at a NUL or print it across lines). Values are only ever added:
a rotated Secret's old value stays secret.
"""

from __future__ import annotations

import json
import logging
import re
import threading

MASK = "[REDACTED]"
_MIN_PIECE = 8
"""Pieces of a value shorter than this (after trimming spaces) are not scrubbed on their own:
they would mangle ordinary words (a piece " back" of a password masked "backend" in every
log line). The whole value is scrubbed whatever its length."""

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def remember(value: str | bytes) -> None:
    """Register a Secret value (and its echoed spellings) for scrubbing."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    if not text:
        return
    as_json = json.dumps(text)[1:-1]
    as_go = re.sub(r"\\u00([0-9a-f]{2})", r"\\x\1", as_json)  # Go's %q (Docker, runc)
    forms = {text, as_json, as_go, repr(text)[1:-1], text.encode("unicode_escape").decode()}
    pieces = (p.strip() for p in re.split(r"[\x00-\x1f\"'\\]+", text))
    forms |= {p for p in pieces if len(p) >= _MIN_PIECE}
    global _pattern
    with _lock:
        if forms <= _values:
            return
        _values.update(f for f in forms if f)
        # Longest first: a value that contains another is masked whole.
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def scrub(text: str) -> str:
    """`text` with every registered value replaced by [REDACTED]."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Scrubs a record's final message and traceback (installed on the root handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        record.msg = scrub(record.getMessage())
        record.args = ()
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (default: root), and to kopf's per-object
    logger, whose warnings kopf also posts as Events."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    kopf_objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, RedactingFilter) for f in kopf_objects.filters):
        kopf_objects.addFilter(RedactingFilter())
