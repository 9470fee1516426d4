"""`python -m kongmasker`: run the KongMaskerStack operator.

    python -m kongmasker                      # cluster-wide
    python -m kongmasker --namespace demo     # one (or more, repeated) namespace(s)

Settings come from KONGMASKER_* environment variables (see kongmasker.config); the flags
override the operator group.
"""

from __future__ import annotations

import argparse
import logging
import sys

import kopf

import kongmasker.handlers  # noqa: F401  (registers the handlers)
from kongmasker import redaction
from kongmasker.config import Settings
from kongmasker.handlers.lifecycle import build_deps


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kongmasker", description=__doc__.splitlines()[0])
    p.add_argument("-n", "--namespace", action="append", default=[], help="namespace to watch")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument(
        "--liveness", default=None, help="kopf liveness URL, e.g. http://127.0.0.1:18081/healthz"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, set up logging, build the adapters and run kopf until signalled."""
    args = _args(sys.argv[1:] if argv is None else argv)
    settings = Settings.from_env()
    namespaces = list(args.namespace) or list(settings.operator.namespaces)
    logging.basicConfig(
        level=settings.operator.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redaction.install_log_filter()  # Secret values never reach the log
    if settings.monitor.webhook_url:  # it usually embeds a token (config.py)
        redaction.remember(settings.monitor.webhook_url)
    # One line per probe request would drown the operator's own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    port = settings.operator.liveness_port
    liveness = args.liveness or (f"http://127.0.0.1:{port}/healthz" if port else None)
    watched = [] if args.all_namespaces else namespaces
    memo = kopf.Memo(settings=settings, deps=build_deps(settings), namespaces=watched)
    kopf.run(
        standalone=True,
        clusterwide=args.all_namespaces or not namespaces,
        namespaces=watched,
        memo=memo,
        liveness_endpoint=liveness,
    )


if __name__ == "__main__":
    main()
