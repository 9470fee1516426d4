"""`kubectl kongmasker monitor NAME`: the live picture of one stack, refreshed every
--interval seconds.

    stack status (components up/down)
    + the gateway's /metrics (status port): requests, codes, latency histogram, masking
    + the backend's /metrics
    + the operator's /metrics (--metrics-url or KONGMASKER_METRICS_URL): CPU, memory, network
      per container as its resource sampler measured them
      -> Sample; two consecutive samples -> View (rates, error ratio, latency quantiles)
      -> a full-screen rich view on a terminal, one timestamped line per refresh otherwise

Ctrl-C ends it cleanly (exit 0, the terminal restored). `--once` prints one view, taken over
one interval, and exits.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kongmasker.api.vocabulary import START_ORDER
from kongmasker.cli.context import (
    EXIT_OK,
    Cluster,
    Stack,
    fetch_metrics,
    operator_metrics_url,
)

GATEWAY = "kongmasker_gateway_"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str | None) -> Samples:
    if not text:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


@dataclass
class Sample:
    at: float
    phase: str
    components: dict[str, str]
    """component -> up | down | absent (from the stack's status)."""
    gateway: Samples
    backend: Samples
    operator: Samples
    sources: dict[str, bool] = field(default_factory=dict)


def take(cluster: Cluster, name: str, metrics_url: str | None) -> Sample:
    stack = Stack(cluster.stack(name))
    st = stack.status
    eps = st.get("endpoints") or {}
    comps = {}
    for comp in START_ORDER:
        c = (st.get("components") or {}).get(str(comp)) or {}
        state = c.get("state", "Absent")
        comps[str(comp)] = "up" if state == "Healthy" else "absent" if state == "Absent" else "down"
    gw = fetch_metrics(f"{eps['kongStatus']}/metrics") if eps.get("kongStatus") else None
    be = fetch_metrics(f"{eps['backend']}/metrics") if eps.get("backend") else None
    op = fetch_metrics(metrics_url) if metrics_url else None
    return Sample(
        at=time.time(),
        phase=str(st.get("phase", "Unknown")),
        components=comps,
        gateway=parse(gw),
        backend=parse(be),
        operator={
            k: v
            for k, v in parse(op).items()
            if ("namespace", stack.namespace) in k[1] and ("name", stack.name) in k[1]
        },
        sources={"gateway": gw is not None, "backend": be is not None, "operator": op is not None},
    )


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            width = count - prev_count
            share = (rank - prev_count) / width if width else 0.0
            return prev_bound + (bound - prev_bound) * share
        prev_bound, prev_count = bound, count
    return prev_bound


def _buckets(s: Samples, name: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for (n, lab), v in s.items():
        if n == f"{name}_bucket":
            le = dict(lab).get("le", "+Inf")
            out[float(le)] = out.get(float(le), 0.0) + v
    return out


@dataclass
class View:
    """What one refresh shows (rates over the interval between two samples)."""

    at: float
    phase: str
    components: dict[str, str]
    requests_per_s: float | None = None
    error_ratio: float | None = None
    latency: dict[str, float | None] = field(default_factory=dict)
    masked_per_s: float | None = None
    masking_failures: float | None = None
    requests_total: float = 0.0
    masked_total: float = 0.0
    containers: dict[str, dict[str, float | None]] = field(default_factory=dict)
    sources: dict[str, bool] = field(default_factory=dict)


def view(prev: Sample | None, cur: Sample) -> View:
    g = cur.gateway
    out = View(cur.at, cur.phase, cur.components, sources=cur.sources)
    out.requests_total = total(g, f"{GATEWAY}requests_total")
    out.masked_total = total(g, f"{GATEWAY}masked_identifiers_total")
    for comp in cur.components:
        op = cur.operator
        out.containers[comp] = {
            "cpu": _value(op, "kongmasker_container_cpu_usage_ratio", comp),
            "memory": _value(op, "kongmasker_container_memory_usage_bytes", comp),
            "rx": _value(op, "kongmasker_container_network_receive_bytes_total", comp),
            "tx": _value(op, "kongmasker_container_network_transmit_bytes_total", comp),
        }
    if prev is None or not g or not prev.gateway:
        return out
    dt_ = max(cur.at - prev.at, 1e-6)
    p = prev.gateway
    reqs = out.requests_total - total(p, f"{GATEWAY}requests_total")
    if reqs < 0:  # the gateway restarted: its counters began again
        return out
    errors = sum(
        total(g, f"{GATEWAY}requests_total", code=c) - total(p, f"{GATEWAY}requests_total", code=c)
        for c in _codes(g)
        if c.startswith("5")
    )
    out.requests_per_s = reqs / dt_
    out.error_ratio = errors / reqs if reqs else 0.0
    now_b, prev_b = (
        _buckets(g, f"{GATEWAY}upstream_latency_seconds"),
        _buckets(p, f"{GATEWAY}upstream_latency_seconds"),
    )
    delta = [(le, now_b[le] - prev_b.get(le, 0.0)) for le in now_b]
    for q in (0.5, 0.95, 0.99):
        out.latency[f"p{int(q * 100)}"] = quantile(delta, q)
    out.masked_per_s = (out.masked_total - total(p, f"{GATEWAY}masked_identifiers_total")) / dt_
    out.masking_failures = sum(
        total(g, f"{GATEWAY}{n}") - total(p, f"{GATEWAY}{n}")
        for n in ("masking_errors_total", "fail_secure_refusals_total")
    )
    return out


def _codes(s: Samples) -> set[str]:
    return {dict(lab).get("code", "") for (n, lab) in s if n == f"{GATEWAY}requests_total"}


def _value(s: Samples, name: str, comp: str) -> float | None:
    found = [v for (n, lab), v in s.items() if n == name and ("component", comp) in lab]
    return sum(found) if found else None


def _fmt(v: float | None, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    return "-" if v is None else f"{v * scale:.{digits}f}{unit}"


def _bytes(v: float | None) -> str:
    if v is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GiB"


def _stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(v: View) -> str:
    """The plain form: one timestamped line per refresh (stdout not a terminal)."""
    comps = " ".join(f"{c}={s}" for c, s in v.components.items())
    lat = "/".join(_fmt(v.latency.get(k), "", 1000, 1) for k in ("p50", "p95", "p99"))
    res = " ".join(
        f"{c}:cpu={_fmt(r['cpu'], '%', 100)},mem={_bytes(r['memory'])}"
        f",rx={_bytes(r['rx'])},tx={_bytes(r['tx'])}"
        for c, r in v.containers.items()
    )
    return (
        f"{_stamp(v.at)} phase={v.phase} {comps} rps={_fmt(v.requests_per_s, '', 1, 2)} "
        f"requests={v.requests_total:.0f} errors={_fmt(v.error_ratio, '%', 100)} "
        f"latency_ms_p50/p95/p99={lat} masked_per_s={_fmt(v.masked_per_s, '', 1, 2)} "
        f"masked={v.masked_total:.0f} masking_failures={_fmt(v.masking_failures, '', 1, 0)} "
        f"{res}"
    )


def table(name: str, v: View) -> Any:
    """The full-screen form (rich renderables)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text(f"{name}  phase {v.phase}  {_stamp(v.at)}  (Ctrl-C to quit)", style="bold")
    traffic = Table(title="Traffic (gateway)", expand=True)
    for col in (
        "req/s",
        "requests",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "masked/s",
        "masked",
        "masking failures",
    ):
        traffic.add_column(col, justify="right")
    traffic.add_row(
        _fmt(v.requests_per_s, "", 1, 2),
        f"{v.requests_total:.0f}",
        _fmt(v.error_ratio, "%", 100),
        _fmt(v.latency.get("p50"), "", 1000),
        _fmt(v.latency.get("p95"), "", 1000),
        _fmt(v.latency.get("p99"), "", 1000),
        _fmt(v.masked_per_s, "", 1, 2),
        f"{v.masked_total:.0f}",
        _fmt(v.masking_failures, "", 1, 0),
    )
    comps = Table(title="Components", expand=True)
    for col in ("component", "state", "CPU", "memory", "net rx", "net tx"):
        comps.add_column(col, justify="left" if col in ("component", "state") else "right")
    for c, state in v.components.items():
        r = v.containers.get(c, {})
        style = "green" if state == "up" else "red"
        comps.add_row(
            c,
            Text(state, style=style),
            _fmt(r.get("cpu"), "%", 100),
            _bytes(r.get("memory")),
            _bytes(r.get("rx")),
            _bytes(r.get("tx")),
        )
    missing = [k for k, ok in v.sources.items() if not ok]
    foot = Text(
        "no metrics from: " + ", ".join(missing)
        if missing
        else "sources: gateway, backend, operator",
        style="dim",
    )
    return Group(head, traffic, comps, foot)


def run(
    cluster: Cluster,
    name: str,
    interval: float,
    once: bool,
    metrics_url: str | None,
    tty: bool | None = None,
) -> int:
    url = operator_metrics_url(metrics_url)
    prev = take(cluster, name, url)
    if tty is None:
        tty = sys.stdout.isatty()
    try:
        if once:
            time.sleep(interval)  # rates need two samples: one interval apart
            cur = take(cluster, name, url)
            _print_once(name, view(prev, cur), tty)
            return EXIT_OK
        if tty:
            _live(cluster, name, url, interval, prev)
        else:
            _lines(cluster, name, url, interval, prev)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _print_once(name: str, v: View, tty: bool) -> None:
    if tty:
        from rich.console import Console

        Console().print(table(name, v))
    else:
        print(line(v), flush=True)


def _samples(
    cluster: Cluster, name: str, url: str | None, interval: float, prev: Sample
) -> Iterable[View]:
    yield view(None, prev)
    while True:
        time.sleep(interval)
        cur = take(cluster, name, url)
        yield view(prev, cur)
        prev = cur


def _live(cluster: Cluster, name: str, url: str | None, interval: float, prev: Sample) -> None:
    from rich.live import Live

    with Live(screen=True, auto_refresh=False) as live:
        for v in _samples(cluster, name, url, interval, prev):
            live.update(table(name, v), refresh=True)


def _lines(cluster: Cluster, name: str, url: str | None, interval: float, prev: Sample) -> None:
    for v in _samples(cluster, name, url, interval, prev):
        print(line(v), flush=True)
