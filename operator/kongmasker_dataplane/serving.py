"""Running aiohttp apps on their listeners, with a graceful drain on SIGTERM or SIGQUIT.

The drain order matters: the service turns not-ready first (so health checks and load balancers
stop sending), then the listeners close (no new connections), then in-flight requests get up to
the grace period to finish, and the process exits 0.

Listeners bind with SO_REUSEPORT so that a second process of the same service can bind the same
ports while the first still serves (the operator's graceful restart hands over that way). Once
every listener is bound (and `ready` says so, e.g. the gateway has its configuration) the server
writes its ready file (KONGMASKER_READY_FILE, default /tmp/kongmasker-ready): over a shared port
a probe may reach either process, the file tells about this one. It is removed on drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["READY_FILE", "Listener", "Server", "parse_listen"]

log = logging.getLogger(__name__)

READY_FILE = "/tmp/kongmasker-ready"


def parse_listen(value: str | None, default: str) -> tuple[str, int]:
    """(host, port) from a Kong-style listen value: `127.0.0.1:8000`, `0.0.0.0:8000 reuseport`,
    or a comma-separated list (the first entry is used), `[::1]:8000` for IPv6."""
    text = (value or default).split(",")[0].strip().split()[0]
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit():
        raise ValueError(f"invalid listen address {text!r} (expected host:port)")
    return host, int(port)


@dataclass
class Listener:
    """One app bound to one address. Drained listeners close first."""

    app: web.Application
    host: str
    port: int
    drain_first: bool = False


@dataclass
class Server:
    """Starts listeners, waits for SIGTERM/SIGINT (or `stop()`), then drains."""

    listeners: list[Listener]
    grace: float = 10.0
    on_drain: Callable[[], None] | None = None
    on_stopped: Callable[[], Awaitable[None]] | None = None
    ready: Callable[[], bool] | None = None
    """Extra readiness beyond "every listener bound" before the ready file is written."""
    ready_file: str | None = field(
        default_factory=lambda: os.environ.get("KONGMASKER_READY_FILE", READY_FILE) or None
    )
    _runners: list[tuple[Listener, web.AppRunner]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Bind every listener; raises if a port is taken."""
        for listener in self.listeners:
            runner = web.AppRunner(
                listener.app, shutdown_timeout=self.grace, access_log=None, handle_signals=False
            )
            await runner.setup()
            site = web.TCPSite(runner, listener.host, listener.port, reuse_port=True)
            await site.start()
            self._runners.append((listener, runner))
            log.info("listening on %s:%d", listener.host, listener.port)
        self.mark_ready()

    def mark_ready(self) -> bool:
        """Write the ready file if every listener is bound and `ready` agrees; True if so."""
        if not self.ready_file or not self._runners or self._stop.is_set():
            return False
        if self.ready is not None and not self.ready():
            return False
        with open(self.ready_file, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return True

    def _unmark_ready(self) -> None:
        if self.ready_file:
            with contextlib.suppress(OSError):
                os.unlink(self.ready_file)

    def stop(self) -> None:
        """Ask `run()` to drain and return (what SIGTERM does)."""
        self._stop.set()

    async def drain(self) -> None:
        """Not-ready, close listeners, wait for in-flight work up to the grace period."""
        self._unmark_ready()
        if self.on_drain is not None:
            self.on_drain()
        ordered = sorted(self._runners, key=lambda lr: not lr[0].drain_first)
        for _listener, runner in ordered:
            await runner.cleanup()
        self._runners.clear()
        if self.on_stopped is not None:
            await self.on_stopped()

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then drain."""
        loop = asyncio.get_running_loop()
        # SIGQUIT is Kong's (nginx's) graceful stop and what the operator sends to the gateway.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            loop.add_signal_handler(sig, self.stop)
        await self.start()
        await self._stop.wait()
        log.info("stop requested: draining for up to %.0fs", self.grace)
        await self.drain()
        log.info("stopped")
