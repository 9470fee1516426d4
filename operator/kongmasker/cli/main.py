"""kubectl-kongmasker: the KongMaskerStack day-2 verbs as a kubectl plugin.

    kubectl kongmasker [-n NS] VERB ...  (kubectl finds `kubectl-kongmasker` on PATH)
      status | monitor | logs | report                read (report also writes a file)
      restart | backup | restore | hibernate          write what a user would, then may wait

One module per verb; context.py reaches the API server (KUBECONFIG) and the stack's Docker
engine the way the operator does. Exit codes: 0 done / Ready, 1 not Ready or the awaited
operation failed, 2 an error the message explains (unknown stack, unreachable engine, usage).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from kongmasker.cli import actions, logs, monitor, report, status
from kongmasker.cli.context import EXIT_ERROR, EXIT_OK, CliError, Cluster

WAIT_TIMEOUT = 600.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl kongmasker",
        description="Day-2 operations on KongMaskerStacks (docs/kubectl-plugin.md).",
    )
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    s = sub.add_parser("status", help="one screen: phase, conditions, components, backups")
    s.add_argument("name")
    s.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")

    m = sub.add_parser("monitor", help="live view: traffic, latency, masking, resources")
    m.add_argument("name")
    m.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    m.add_argument("--once", action="store_true", help="print one view (over one interval)")
    m.add_argument("--metrics-url", help="operator metrics (default: $KONGMASKER_METRICS_URL)")

    lg = sub.add_parser("logs", help="container logs interleaved by time")
    lg.add_argument("name")
    lg.add_argument("component", nargs="?", help="redis, kong, nginx or backend")
    lg.add_argument("--since", help="duration (10m) or RFC 3339 time")
    lg.add_argument("--tail", type=int, help="last N lines of each container")
    lg.add_argument("-f", "--follow", action="store_true")

    r = sub.add_parser("report", help="a tar.gz bundle for a support case (secrets redacted)")
    r.add_argument("name")
    r.add_argument("-o", "--output", help="file (default: report-NS-NAME-TIME.tar.gz)")
    r.add_argument("--since", help="container logs since (duration or RFC 3339)")
    r.add_argument("--tail", type=int, default=2000, help="container log lines (default 2000)")
    r.add_argument("--metrics-url", help="operator metrics (default: $KONGMASKER_METRICS_URL)")
    r.add_argument(
        "--operator-log",
        help="operator log file (default: $KONGMASKER_OPERATOR_LOG, else the operator pod's log)",
    )

    rs = sub.add_parser("restart", help="ordered restart (the restartedAt annotation)")
    rs.add_argument("name")
    rs.add_argument("--graceful", action="store_true", help="zero-downtime handover")
    rs.add_argument("--wait", action="store_true")

    b = sub.add_parser("backup", help="create a StackBackup of type Backup")
    b.add_argument("name")
    b.add_argument("--backup-name", help="default NAME-YYYYmmddHHMMSS")
    b.add_argument(
        "--directory", help="storage.directory.path on the Docker host (default: the CRD's)"
    )
    b.add_argument("--wait", action="store_true")

    rt = sub.add_parser("restore", help="create a StackBackup of type Restore")
    rt.add_argument("name")
    rt.add_argument("--from", dest="source", required=True, help="the StackBackup to restore")
    rt.add_argument("--restore-name", help="default NAME-restore-YYYYmmddHHMMSS")
    rt.add_argument("--wait", action="store_true")

    h = sub.add_parser("hibernate", help="stop and keep the data (on), start again (off)")
    h.add_argument("mode", choices=("on", "off", "status"))
    h.add_argument("name")
    h.add_argument("--wait", action="store_true")

    for sp in (rs, b, rt, h):
        sp.add_argument("--timeout", type=float, default=WAIT_TIMEOUT, help="seconds to wait")
    return p


def dispatch(args: argparse.Namespace) -> int:
    cluster = Cluster.connect(args.namespace)
    verb = args.verb
    if verb == "status":
        return status.run(cluster, args.name, args.output)
    if verb == "monitor":
        return monitor.run(cluster, args.name, args.interval, args.once, args.metrics_url)
    if verb == "logs":
        return logs.run(cluster, args.name, args.component, args.since, args.tail, args.follow)
    if verb == "report":
        return report.run(
            cluster,
            args.name,
            args.output,
            args.since,
            args.tail,
            args.metrics_url,
            args.operator_log,
        )
    if verb == "restart":
        return actions.restart(cluster, args.name, args.graceful, args.wait, args.timeout)
    if verb == "backup":
        return actions.backup(
            cluster, args.name, args.backup_name, args.directory, args.wait, args.timeout
        )
    if verb == "restore":
        return actions.restore(
            cluster, args.name, args.source, args.restore_name, args.wait, args.timeout
        )
    return actions.hibernate(cluster, args.mode, args.name, args.wait, args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # A closed pipe (`... | head`) ends the plugin quietly, as for any Unix filter.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return dispatch(args)
    except CliError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:  # last resort: one line, not a traceback, for a user
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
