"""A mock of the AI upstream (Anthropic Messages API shape) that records what it received.

It stands in for api.anthropic.com, which is unreachable here. The reply text contains,
verbatim, every text of the request's messages (so unmasking on the way back is exercised), and
`GET /__requests` shows the last N request bodies, oldest first, so tests and the operator's
masking canary can prove what left the gateway.

Test knobs (request headers): `X-Mock-Chunk-Bytes: N` sends the reply in N-byte chunks
(chunked encoding, no Content-Length), `X-Mock-Chunk-Delay-Ms: M` pauses between them, so
masked ids split across response chunks; `"stream": true` in the body answers with Messages API
server-sent events (`X-Mock-Delta-Chars: N` cuts the text into N-character deltas, so a masked
id can be split across events). `X-Mock-Status: 529` answers with that status and an API error body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .serving import Listener, Server, parse_listen

__all__ = ["MockUpstream", "extract_text", "main"]

_SECRET_HEADERS = ("x-api-key", "authorization", "cookie")


def extract_text(body: Any) -> str:
    """All text of a Messages API request: the system prompt and every message's text,
    joined by blank lines (content may be a string or a list of blocks)."""
    if not isinstance(body, dict):
        return body if isinstance(body, str) else json.dumps(body)
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
            ]
    return "\n\n".join(texts)


def _deltas(text: str, size: int) -> list[str]:
    """Pieces of a streamed reply: `size` characters each, or words (with their trailing
    space) when size is 0, like a model's tokens."""
    if size > 0:
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


def _fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


class MockUpstream:
    """The mock's state (request history) and its aiohttp app."""

    def __init__(self, history: int = 100) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=history)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self.handle_messages)
        app.router.add_get("/__requests", self.handle_history)
        app.router.add_delete("/__requests", self.handle_clear)
        app.router.add_get("/health", self.handle_health)
        return app

    async def handle_health(self, _req: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "recorded": len(self.history)})

    async def handle_history(self, req: web.Request) -> web.Response:
        if req.query.get("full") in ("1", "true"):
            return web.json_response(list(self.history))
        return web.json_response([r["body"] for r in self.history])

    async def handle_clear(self, _req: web.Request) -> web.Response:
        self.history.clear()
        return web.json_response({"cleared": True})

    def _record(self, req: web.Request, raw: bytes) -> Any:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {
            k.lower(): (_fingerprint(v) if k.lower() in _SECRET_HEADERS else v)
            for k, v in req.headers.items()
        }
        self.history.append(
            {"method": req.method, "path": req.path, "query": req.query_string,
             "headers": headers, "body": body}
        )  # fmt: skip
        return body

    async def handle_messages(self, req: web.Request) -> web.StreamResponse:
        body = self._record(req, await req.read())
        forced = req.headers.get("X-Mock-Status")
        if forced and forced.isdigit() and int(forced) >= 400:
            return web.json_response(
                {"type": "error", "error": {"type": "overloaded_error", "message": "mock error"}},
                status=int(forced),
            )
        text = extract_text(body)
        model = body.get("model", "mock-model") if isinstance(body, dict) else "mock-model"
        reply_text = f"Mock analysis of your request. You wrote:\n{text}"
        message = {
            "id": f"msg_mock_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply_text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": max(1, len(text) // 4),
                "output_tokens": max(1, len(reply_text) // 4),
            },
        }
        if isinstance(body, dict) and body.get("stream") is True:
            return await self._stream_sse(req, message, reply_text)
        payload = json.dumps(message, ensure_ascii=False).encode()
        chunk = int(req.headers.get("X-Mock-Chunk-Bytes", "0") or 0)
        if chunk <= 0:
            return web.Response(body=payload, content_type="application/json")
        delay = int(req.headers.get("X-Mock-Chunk-Delay-Ms", "0") or 0) / 1000
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        for i in range(0, len(payload), chunk):
            await resp.write(payload[i : i + chunk])
            if delay:
                await asyncio.sleep(delay)  # a slow upstream, so chunks arrive apart
        await resp.write_eof()
        return resp

    async def _stream_sse(
        self, req: web.Request, message: dict[str, Any], text: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(req)

        async def event(name: str, data: dict[str, Any]) -> None:
            await resp.write(
                f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
            )

        start = dict(message, content=[], stop_reason=None)
        await event("message_start", {"type": "message_start", "message": start})
        await event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for piece in _deltas(text, int(req.headers.get("X-Mock-Delta-Chars", "0") or 0)):
            await event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": message["usage"]["output_tokens"]},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp


async def run(env: Mapping[str, str]) -> None:
    """Serve the mock until SIGTERM, then drain."""
    mock = MockUpstream(int(env.get("MOCK_HISTORY", "100")))
    host, port = parse_listen(env.get("MOCK_LISTEN"), "127.0.0.1:8090")
    await Server([Listener(mock.app(), host, port, drain_first=True)],
                 grace=float(env.get("MOCK_GRACE_SECONDS", "5"))).run()  # fmt: skip


def main() -> None:
    """Entry point of `python -m kongmasker_dataplane mock-upstream`."""
    asyncio.run(run(os.environ))
