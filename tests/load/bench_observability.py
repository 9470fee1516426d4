"""Benchmark of issue 5's observability parts on real containers; prints figures, asserts
nothing about speed.

    DOCKER_HOST=$(cat .local/docker-host) .venv/bin/python tests/load/bench_observability.py

Starts a hand-wired stack (mock upstream, Redis, gateway, Nginx; tests/integration/
observability/obs_support.py) from the images listed in .local/images.env, then measures:
- the masking canary: end-to-end latency of the all-types request (p50/p95/max over N runs),
  the whole run with per-type timing, and the gateway's masking time per identifier type;
- one resource-sampling round over the stack's containers (blocking, as the worker thread
  does it), i.e. how stale `latest()` can be at most beyond the interval;
- with --recovery, time to recover the gateway (fault -> Kong's health gate passes again):
  a crash (SIGKILL) healed by Docker's restart policy, a hang (SIGSTOP) healed by an
  autoheal-style poller (its defaults: poll Docker's health every 5 s, restart an `unhealthy`
  container with a 10 s stop timeout) and a hang healed by StackMonitor ticking every second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

import docker  # noqa: E402
from tests.integration.observability.obs_support import Stack, hand_wired_stack  # noqa: E402

from kongmasker import metrics  # noqa: E402
from kongmasker.adapters.probes import NetProbes  # noqa: E402
from kongmasker.api.vocabulary import Component  # noqa: E402
from kongmasker.core import canary, health  # noqa: E402
from kongmasker.core.monitor import StackMonitor  # noqa: E402
from kongmasker.core.recovery import Policy  # noqa: E402
from kongmasker.core.render import StackRef  # noqa: E402
from kongmasker.core.resources import ResourceSampler  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="canary runs without timing")
    parser.add_argument("--timed-runs", type=int, default=3, help="runs with per-type timing")
    parser.add_argument("--recovery", action="store_true", help="also time crash/hang recovery")
    args = parser.parse_args()
    docker_host = os.environ.get("DOCKER_HOST") or (REPO / ".local/docker-host").read_text().strip()
    pairs = (REPO / ".local/images.env").read_text().split()
    images = dict(p.split("=", 1) for p in pairs)

    with hand_wired_stack(docker_host, images, "obs-bench") as stack:
        target = stack.target
        canary.run(target, per_type_timing=False)  # warm-up: connections, Redis mappings
        latencies: list[float] = []
        for _ in range(args.runs):
            result = canary.run(target, per_type_timing=False)
            assert result.ok, result.message
            latencies.append(result.latency_seconds or 0.0)
        print(
            f"canary all-types request ({len(canary.build_probe().lines)} types, "
            f"{args.runs} runs): p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p95 {_pct(latencies, 0.95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
        per_type: dict[str, list[float]] = {}
        whole: list[float] = []
        for _ in range(args.timed_runs):
            t0 = time.perf_counter()
            result = canary.run(target)
            whole.append(time.perf_counter() - t0)
            assert result.ok, result.message
            for t, r in result.types.items():
                if r.masking_seconds is not None:
                    per_type.setdefault(t, []).append(r.masking_seconds)
        print(f"canary run with per-type timing: median {statistics.median(whole):.2f} s")
        medians = {t: statistics.median(v) for t, v in per_type.items()}
        slow = sorted(medians.items(), key=lambda kv: kv[1], reverse=True)
        print(
            f"gateway masking time per type (median of {args.timed_runs}): "
            f"median over types {statistics.median(medians.values()) * 1000:.2f} ms, "
            f"slowest " + ", ".join(f"{t} {v * 1000:.2f} ms" for t, v in slow[:3])
        )

        sampler = ResourceSampler()
        ref: StackRef = stack.ref
        sampler.watch("obs-bench", ref.name, stack.runtime, ref.stack_labels())
        rounds = []
        for _ in range(3):
            t0 = time.perf_counter()
            usage = sampler.sample_now("obs-bench", ref.name)
            rounds.append(time.perf_counter() - t0)
        sampler.stop()
        print(
            f"resource sampling round ({len(usage.containers)} containers, 4 workers): "
            f"median {statistics.median(rounds):.2f} s"
        )
        for comp, u in usage.containers.items():
            print(f"  {comp}: cpu {u.cpu_cores:.3f} cores, memory {u.memory_bytes / 2**20:.1f} MiB")
        if args.recovery:
            recovery(stack, docker_host)


def _kong_ok(stack: Stack, probes: NetProbes) -> bool:
    return health.check(Component.KONG, stack.spec, probes, stack.secrets).ok


def _until(condition: Callable[[], bool], timeout: float = 300, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("no recovery within the deadline")
        time.sleep(step)


def recovery(stack: Stack, docker_host: str) -> None:
    """Fault -> Kong's gate passes again, three ways (see the module docstring)."""
    client = docker.DockerClient(base_url=docker_host)
    probes = NetProbes(timeout=1.0)
    kong = stack.ids["kong"]
    try:
        restarts = client.api.inspect_container(kong)["RestartCount"]
        t0 = time.perf_counter()
        # From the host, not `docker kill`: Docker treats that as a manual stop and its
        # restart policy would not act; a crash is the process dying on its own.
        os.kill(client.api.inspect_container(kong)["State"]["Pid"], signal.SIGKILL)
        _until(lambda: client.api.inspect_container(kong)["RestartCount"] > restarts)
        _until(lambda: _kong_ok(stack, probes))
        print(f"crash (SIGKILL), Docker restart policy: {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        client.api.kill(kong, signal="SIGSTOP")

        def autoheal() -> bool:  # one poll of an autoheal-style watcher
            state = client.api.inspect_container(kong)["State"]
            if (state.get("Health") or {}).get("Status") == "unhealthy":
                client.api.restart(kong, timeout=10)
            return _kong_ok(stack, probes) and time.perf_counter() - t0 > 2

        _until(autoheal, step=5.0)
        print(f"hang (SIGSTOP), autoheal-style poller (5 s): {time.perf_counter() - t0:.1f} s")

        monitor = StackMonitor(
            "obs-bench",
            stack.ref.name,
            policy=Policy(failure_threshold=3, startup_grace=2),
            canary_interval=0,
            stop_timeout=2,
            probe_timeout=1.0,
            components=(Component.REDIS, Component.KONG, Component.NGINX),
        )
        t0 = time.perf_counter()
        client.api.kill(kong, signal="SIGSTOP")

        restarted: list[Component] = []

        def monitored() -> bool:  # the monitor's own probe says when Kong is back
            tick = monitor.tick(stack.spec, stack.ref, stack.runtime, probes, stack.secrets)
            restarted.extend(tick.restarted)
            up = metrics.COMPONENT_UP.labels("obs-bench", stack.ref.name, "kong")._value.get()
            return bool(restarted) and up == 1

        _until(monitored, step=0.0)
        print(
            "hang (SIGSTOP), StackMonitor (back-to-back ticks, probe timeout 1 s, threshold 3): "
            f"{time.perf_counter() - t0:.1f} s"
        )
        monitor.forget()
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.api.kill(kong, signal="SIGCONT")
        client.close()


if __name__ == "__main__":
    main()
