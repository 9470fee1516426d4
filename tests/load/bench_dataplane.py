"""Benchmark of the data plane: gateway requests/s and added latency, and engine throughput.

Runs the real images on the local dockerd (redis, mockupstream, gateway; host network on
127.0.0.1), sends Messages API requests with 1 KB and 64 KB bodies holding 10 identifiers,
first straight to the mock upstream (the floor), then through the gateway (masking, Redis,
unmasking), and prints a Markdown table. Then it measures the pure masking engine in-process.

    .venv/bin/python tests/load/bench_dataplane.py [--requests 300] [--concurrency 8]

It is a script, not a test: figures depend on the machine and go into docs/dataplane.md with
the command that produced them. Bounded: a few hundred requests per case on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "operator")]

import aiohttp  # noqa: E402
import docker  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

from kongmasker_dataplane import bodies, masking  # noqa: E402

LABELS = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/bench": "dataplane"}
IDENTIFIER_TYPES = [
    "EC2", "VPC", "SUBNET", "SECURITY_GROUP", "IAM_ROLE", "S3_BUCKET", "PRIVATE_IP",
    "PUBLIC_IP", "ACCESS_KEY", "RDS",
]  # fmt: skip
FILLER = (
    "The service returned intermittent timeouts after the last deploy; the on-call engineer "
    "restarted the worker pool, checked the load balancer health checks and the queue depth, "
    "and saw latency climb again at 12:30:45 with version 1.2.3 of the client. "
)


def make_text(size: int) -> str:
    """About `size` bytes of prose with the 10 identifiers spread through it."""
    ids = [masking.EXAMPLES[t] for t in IDENTIFIER_TYPES]
    filler_len = max(0, size - sum(len(i) + 2 for i in ids))
    filler = (FILLER * (filler_len // len(FILLER) + 1))[:filler_len]
    step = max(1, len(filler) // len(ids))
    parts = []
    for k, ident in enumerate(ids):
        parts.append(filler[k * step : (k + 1) * step])
        parts.append(f" {ident} ")
    parts.append(filler[len(ids) * step :])
    return "".join(parts)


def make_body(size: int) -> bytes:
    body = {"model": "bench", "max_tokens": 16, "messages": [{"role": "user", "content": ""}]}
    overhead = len(json.dumps(body))
    body["messages"][0]["content"] = make_text(size - overhead)  # type: ignore[index]
    return json.dumps(body).encode()


# --- containers --------------------------------------------------------------------------


def docker_client() -> docker.DockerClient:
    host = os.environ.get("DOCKER_HOST") or (REPO / ".local" / "docker-host").read_text().strip()
    os.environ["DOCKER_HOST"] = host
    return docker.DockerClient(base_url=host)


def images() -> dict[str, str]:
    subprocess.run(
        ["bash", str(REPO / "hack" / "build-images.sh"), "redis", "mockupstream", "gateway"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return {n: f"kongmasker/{n}:dev" for n in ("redis", "mockupstream", "gateway")}


def start_stack(client: docker.DockerClient, tags: dict[str, str]) -> tuple[list[Any], str, str]:
    """(containers, mock URL, gateway proxy URL)."""
    password = uuid.uuid4().hex
    redis_port, mock_port = free_port(), free_port()
    proxy, admin, status = free_port(), free_port(), free_port()

    def run(image: str, env: dict[str, str]) -> Any:
        return client.containers.run(
            image, detach=True, network_mode="host", environment=env, labels=LABELS
        )

    started = [
        run(tags["redis"], {"REDIS_PORT": str(redis_port), "REDIS_PASSWORD": password}),
        run(tags["mockupstream"], {"MOCK_LISTEN": f"127.0.0.1:{mock_port}", "MOCK_HISTORY": "10"}),
    ]
    mock = f"http://127.0.0.1:{mock_port}"
    config = {
        "_format_version": "3.0",
        "services": [
            {
                "name": "claude-api-service",
                "url": mock,
                "routes": [{"name": "claude", "paths": ["/v1"], "strip_path": False}],
                "plugins": [
                    {
                        "name": "aws-masker",
                        "config": {
                            "redis_port": redis_port,
                            "redis_password": "{vault://env/redis-password}",
                        },
                    }
                ],
            }
        ],
    }
    started.append(
        run(
            tags["gateway"],
            {
                "KONG_PROXY_LISTEN": f"127.0.0.1:{proxy}",
                "KONG_ADMIN_LISTEN": f"127.0.0.1:{admin}",
                "KONG_STATUS_LISTEN": f"127.0.0.1:{status}",
                "KONG_DECLARATIVE_CONFIG_STRING": json.dumps(config),
                "KONG_LOG_LEVEL": "warning",
                "REDIS_PASSWORD": password,
            },
        )
    )
    import httpx

    wait_until(lambda: httpx.get(f"{mock}/health").status_code == 200, timeout=60, what="mock")
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{status}/status/ready").status_code == 200,
        timeout=60,
        what="gateway ready",
    )
    return started, mock, f"http://127.0.0.1:{proxy}"


# --- load --------------------------------------------------------------------------------


async def run_load(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, float]:
    """Send `requests` POSTs with `concurrency` workers; latencies in ms, rate in req/s."""
    latencies: list[float] = []
    headers = {"content-type": "application/json", "x-api-key": "bench"}
    queue = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in queue:
            t0 = time.perf_counter()
            async with session.post(f"{url}/v1/messages", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
            latencies.append((time.perf_counter() - t0) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(3)))  # warm-up connections
        latencies.clear()
        queue = iter(range(requests))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def engine_throughput(seconds: float = 2.0) -> list[tuple[str, float, float]]:
    """(case, MB/s, CPU ms per op) of mask() on text and of the gateway's JSON body path."""
    rows = []
    for size in (1024, 64 * 1024, 1024 * 1024):
        text = make_text(size)
        body = make_body(size)
        plain = (FILLER * (size // len(FILLER) + 1))[:size]
        for name, fn in (
            ("mask(text), no identifiers", lambda t=plain: masking.mask(t)),
            ("mask(text), 10 ids", lambda t=text: masking.mask(t)),
            (
                "JSON body: parse+mask+rebuild",
                lambda b=body: _json_path(b),
            ),
        ):
            # CPU time of this process: on a shared machine wall time mostly measures the
            # neighbours, CPU time measures the engine.
            n, t0 = 0, time.process_time()
            while time.process_time() - t0 < seconds:
                fn()
                n += 1
            elapsed = time.process_time() - t0
            rows.append(
                (f"{name}, {size // 1024} KB", size * n / elapsed / 1e6, elapsed / n * 1000)
            )
    return rows


def _json_path(body: bytes) -> bytes:
    parsed = bodies.parse_body(body, "application/json")
    alloc = masking.LocalAllocator()
    return bodies.rebuild(parsed, {o: alloc(t, o) for t, o in parsed.items})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per case")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--engine-only", action="store_true", help="only the in-process engine figures (no Docker)"
    )
    args = parser.parse_args()
    if args.engine_only:
        print_engine()
        return 0

    client = docker_client()
    started, mock, gateway = start_stack(client, images())
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"requests per case: {args.requests}; latency at concurrency 1, rate at "
          f"concurrency {args.concurrency}\n")  # fmt: skip
    try:
        print("| body | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for size in (1024, 64 * 1024):
            body = make_body(size)
            results = {}
            for target, url in (("mock (floor)", mock), ("gateway", gateway)):
                lat = asyncio.run(run_load(url, body, args.requests, 1))
                rate = asyncio.run(run_load(url, body, args.requests, args.concurrency))
                results[target] = (lat, rate)
            floor = results["mock (floor)"][0]
            for target, (lat, rate) in results.items():
                added = (
                    f"{lat['p50'] - floor['p50']:.2f} | {lat['p99'] - floor['p99']:.2f}"
                    if target == "gateway"
                    else "- | -"
                )
                print(
                    f"| {size // 1024} KB, 10 ids | {target} | {rate['rps']:.0f} | "
                    f"{lat['p50']:.2f} | {lat['p99']:.2f} | {added} |"
                )
    finally:
        for c in started:
            c.remove(force=True)
    print_engine()
    return 0


def print_engine() -> None:
    print(f"\n{os.cpu_count()} CPUs, load average before the engine run: {os.getloadavg()[0]:.2f}")
    print("| engine case (CPU time) | MB/s | ms/op |")
    print("|---|---|---|")
    for name, mbps, ms in engine_throughput():
        print(f"| {name} | {mbps:.1f} | {ms:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
