"""`python -m kongmasker_dataplane gateway|backend|mock-upstream` runs one data-plane service;
`python -m kongmasker_dataplane healthcheck SERVICE` is the containers' HEALTHCHECK probe.

Logs go to stderr as one line per event; the level comes from KONG_LOG_LEVEL (gateway) or
LOG_LEVEL (default info). No log line ever holds request or response text.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

_SERVICES = ("gateway", "backend", "mock-upstream")


def _runner(name: str) -> Callable[[], None]:
    # Imported lazily so each service loads only what it runs.
    if name == "gateway":
        from .gateway import main
    elif name == "backend":
        from .backend import main
    else:
        from .mockupstream import main
    return main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kongmasker_dataplane")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _SERVICES:
        sub.add_parser(name, help=f"run the {name}")
    probe = sub.add_parser("healthcheck", help="exit 0 when the service answers (HEALTHCHECK)")
    probe.add_argument("service", choices=_SERVICES)
    args = parser.parse_args(argv)
    if args.command == "healthcheck":
        from .healthcheck import check

        return check(args.service)
    args.service = args.command
    level = os.environ.get("KONG_LOG_LEVEL" if args.service == "gateway" else "LOG_LEVEL", "info")
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _runner(args.service)()
    return 0


if __name__ == "__main__":
    sys.exit(main())
