"""Benchmark of recovery through the operator (issue 5): time from a fault to the component
serving again, with the operator and its health watch doing the healing; prints figures,
asserts nothing about speed.

    eval "$(make -s env)"
    .venv/bin/python tests/load/bench_recovery.py --runs 3

One operator scoped to a scratch namespace (the harness of bench_footprint.py: Secrets, one
mock upstream, everything removed at the end), one stack per pace:

- `defaults`: the operator's settings (probes every 10 s, threshold 3, probe timeout 3 s);
- `fast`: the stack's own spec.monitoring (probes every 2 s, timeout 1 s, threshold 3).

For each, the gateway (Kong) is
- crashed: SIGKILL of its process from the host (`docker kill` is a manual stop for Docker,
  whose policy would then not act); timed until Kong's /status/ready answers 200 again, and
  until the operator has counted the restart in status.watch (it reports, Docker restarts);
- hung: SIGSTOP of its process; timed until the watch has restarted it and /status/ready
  answers again, and until the stack's status is Ready again.

Each fault is measured alone: the stack's spec sets `recovery.backoffSeconds: 0` and a large
restart budget (otherwise the n-th restart in the window waits for its backoff, up to 5 min,
which is what the backoff is for but not what is measured here), and the script lets the
startup grace of the previous restart (10 s) pass before the next fault.

Compare with tests/load/bench_observability.py --recovery (Docker's policy alone, and an
autoheal-style poller with its defaults, on the same images).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import docker
import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from tests.load.bench_footprint import STATE, Bench, kubectl, scratch  # noqa: E402
from tests.support import wait_until  # noqa: E402

GRACE = 10.0
"""The operator's default startup grace (KONGMASKER_MONITOR_STARTUP_GRACE)."""

PACES: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "fast": {"probes": {"periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 3}},
}


def status(bench: Bench, name: str) -> dict[str, Any]:
    out = kubectl("get", "kms", name, "-n", bench.namespace, "-o", "json")
    return dict(json.loads(out).get("status") or {})


def kong_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/status/ready", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def restarts_seen(bench: Bench, name: str) -> int:
    comps = (status(bench, name).get("watch") or {}).get("components") or {}
    return int((comps.get("kong") or {}).get("restartsInWindow", 0))


def since(t0: float) -> float:
    return time.perf_counter() - t0


def crash(bench: Bench, name: str, kong: Any, port: int) -> tuple[float, float]:
    before = restarts_seen(bench, name)
    kong.reload()
    t0 = time.perf_counter()
    os.kill(int(kong.attrs["State"]["Pid"]), signal.SIGKILL)
    wait_until(lambda: not kong_ready(port), timeout=10, interval=0.01, what="kong down")
    wait_until(lambda: kong_ready(port), timeout=300, interval=0.05, what="kong back")
    back = since(t0)
    wait_until(
        lambda: restarts_seen(bench, name) > before,
        timeout=300,
        interval=0.2,
        what="restart counted",
    )
    return back, since(t0)


def hang(bench: Bench, name: str, kong: Any, port: int) -> tuple[float, float]:
    kong.reload()
    started = kong.attrs["State"]["StartedAt"]
    t0 = time.perf_counter()
    kong.kill(signal="SIGSTOP")

    def restarted_and_ready() -> bool:
        kong.reload()
        return kong.attrs["State"]["StartedAt"] != started and kong_ready(port)

    wait_until(restarted_and_ready, timeout=600, interval=0.1, what="kong restarted")
    back = since(t0)
    wait_until(
        lambda: (
            status(bench, name).get("phase") == "Ready"
            and all(
                c.get("probe") == "Passed"
                for c in ((status(bench, name).get("watch") or {}).get("components") or {}).values()
            )
        ),
        timeout=300,
        interval=0.2,
        what="stack Ready, every probe passing",
    )
    return back, since(t0)


def run_pace(bench: Bench, pace: str, runs: int) -> list[str]:
    name = f"rec-{pace}"
    manifest = bench.manifest(name)
    if PACES[pace] is not None:
        manifest["spec"]["monitoring"] = PACES[pace]
    manifest["spec"]["monitoring"] = {
        **(manifest["spec"].get("monitoring") or {}),
        # Each fault alone: no backoff from the previous ones, no escalation.
        "recovery": {"restartBudget": 100, "backoffSeconds": 0},
    }
    kubectl("apply", "-f", "-", input=json.dumps(manifest))
    bench.stacks.append(name)
    wait_until(lambda: status(bench, name).get("phase") == "Ready", timeout=240, what="Ready")
    port = manifest["spec"]["kong"]["statusPort"]
    [kong] = bench.client.containers.list(
        filters={"label": [f"kongmasker.io/stack-name={name}", "kongmasker.io/component=kong"]}
    )
    crashes, hangs = [], []
    for _ in range(runs):
        for fault, results in ((crash, crashes), (hang, hangs)):
            time.sleep(GRACE + 1)  # the previous restart's startup grace, not a synchronisation
            results.append(fault(bench, name, kong, port))
    lines = []
    for label, got in (("crash (SIGKILL)", crashes), ("hang (SIGSTOP)", hangs)):
        back = [b for b, _ in got]
        reported = [r for _, r in got]
        lines.append(
            f"{pace:<8} {label:<16} serving again: median {statistics.median(back):5.1f} s "
            f"(min {min(back):.1f}, max {max(back):.1f}); operator reports it: median "
            f"{statistics.median(reported):5.1f} s   [{len(got)} runs]"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="faults of each kind per pace")
    parser.add_argument("--paces", nargs="+", choices=list(PACES), default=list(PACES))
    parser.add_argument("--ref", default=None, help="run the operator code of this git commit")
    args = parser.parse_args()
    if not 1 <= args.runs <= 5:
        parser.error("--runs: between 1 and 5 (a hang at the default pace takes ~40 s)")
    os.environ.setdefault("DOCKER_HOST", (STATE / "docker-host").read_text().strip())
    os.environ.setdefault("KUBECONFIG", str(STATE / "kubeconfig"))
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    lines: list[str] = []
    with scratch(client, args.ref) as bench:
        for pace in args.paces:
            lines += run_pace(bench, pace, args.runs)
            for line in lines[-2:]:
                print(line, flush=True)
    print("\n".join(["", f"recovery through the operator ({time.strftime('%Y-%m-%d %H:%M')}):"]))
    print("\n".join(lines))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
