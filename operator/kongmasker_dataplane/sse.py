"""Server-sent events of the Messages API, re-chunked so that no masked id is split.

A streamed reply carries its text in `content_block_delta` events, and a model may emit a
masked id across two deltas (`"AWS_EC"` then `"2_001"`). Byte-level splitting cannot join
those (each sits in its own JSON string), so this splitter works per event: it holds back the
tail of a delta's text that may be the start of a masked id, prepends it to the next delta of
the same content block, and flushes it as an extra delta before `content_block_stop`. Every
event it returns is complete, so ordinary byte-level unmasking then applies.

Pure code, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from .masking import hold_back

__all__ = ["SseRechunker"]

# delta type -> the field holding the streamed text
_DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json"}


def _event(name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()


class SseRechunker:
    """Feed raw SSE bytes, get back whole events with no masked id split across deltas."""

    def __init__(self) -> None:
        self._buf = b""
        # (content block index, delta type) -> held-back text
        self._held: dict[tuple[int, str], str] = {}

    def feed(self, chunk: bytes) -> bytes:
        self._buf += chunk.replace(b"\r\n", b"\n")
        out: list[bytes] = []
        while True:
            end = self._buf.find(b"\n\n")
            if end < 0:
                break
            block, self._buf = self._buf[:end], self._buf[end + 2 :]
            out.append(self._process(block))
        return b"".join(out)

    def flush(self) -> bytes:
        """What is left at the end of the stream (held text first, then any partial event)."""
        out = [self._release(index) for index in sorted({i for i, _ in self._held})]
        rest, self._buf = self._buf, b""
        return b"".join(out) + rest

    def _release(self, index: int) -> bytes:
        out = b""
        for i, kind in [k for k in self._held if k[0] == index]:
            text = self._held.pop((i, kind))
            if text:
                delta = {"type": kind, _DELTA_FIELDS[kind]: text}
                out += _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                )
        return out

    def _process(self, block: bytes) -> bytes:
        data_lines = [ln[5:].lstrip() for ln in block.split(b"\n") if ln.startswith(b"data:")]
        try:
            data = json.loads(b"\n".join(data_lines)) if data_lines else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return block + b"\n\n"
        kind = data.get("type")
        index = data.get("index")
        if kind == "content_block_delta" and isinstance(index, int):
            delta = data.get("delta")
            if isinstance(delta, dict):
                delta_type = str(delta.get("type"))
                field = _DELTA_FIELDS.get(delta_type)
                if field is not None and isinstance(delta.get(field), str):
                    key = (index, delta_type)
                    safe, held = hold_back(self._held.pop(key, "") + delta[field])
                    if held:
                        self._held[key] = held
                    if not safe:
                        return b""
                    delta[field] = safe
                    return _event("content_block_delta", data)
        if kind == "content_block_stop" and isinstance(index, int):
            return self._release(index) + block + b"\n\n"
        return block + b"\n\n"
