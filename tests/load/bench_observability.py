"""Benchmark of issue 5's observability parts on real containers; prints figures, asserts
nothing about speed.

    DOCKER_HOST=$(cat .local/docker-host) .venv/bin/python tests/load/bench_observability.py

Starts a hand-wired stack (mock upstream, Redis, gateway, Nginx; tests/integration/
observability/obs_support.py) from the images listed in .local/images.env, then measures:
- the masking canary: end-to-end latency of the all-types request (p50/p95/max over N runs),
  the whole run with per-type timing, and the gateway's masking time per identifier type;
- one resource-sampling round over the stack's containers (blocking, as the worker thread
  does it), i.e. how stale `latest()` can be at most beyond the interval.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

from tests.integration.observability.obs_support import hand_wired_stack  # noqa: E402

from kongmasker.core import canary  # noqa: E402
from kongmasker.core.render import StackRef  # noqa: E402
from kongmasker.core.resources import ResourceSampler  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="canary runs without timing")
    parser.add_argument("--timed-runs", type=int, default=3, help="runs with per-type timing")
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


if __name__ == "__main__":
    main()
