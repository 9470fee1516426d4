"""`kubectl kongmasker logs NAME [COMPONENT] [--since] [--tail] [-f]`: the stack's container
logs through its own Docker engine, interleaved by time, each line prefixed by its component.

    engine(stack) -> containers (by the stack's labels) -> Docker logs with timestamps
      -> merged by timestamp (or, with -f, printed as they arrive from one thread per container)
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kongmasker.adapters.docker import DockerRuntime
from kongmasker.adapters.runtime import ContainerInfo
from kongmasker.api.vocabulary import LABEL_COMPONENT, START_ORDER
from kongmasker.cli.context import EXIT_OK, CliError, Cluster, Stack, engine, now, parse_time
from kongmasker.errors import KongMaskerError

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Line:
    at: str
    """Docker's RFC 3339 nanosecond timestamp (sortable as text within one engine)."""
    component: str
    text: str

    def render(self, width: int) -> str:
        return f"{self.component:<{width}} | {self.at} {self.text}"


def since_epoch(value: str | None) -> float | None:
    """--since: a duration (30s, 10m, 2h, 1d) or an RFC 3339 time."""
    if not value:
        return None
    if m := _DURATION.match(value):
        return (now() - dt.timedelta(seconds=int(m[1]) * _UNITS[m[2]])).timestamp()
    parsed = parse_time(value)
    if parsed is None:
        raise CliError(f"--since {value!r}: use a duration (30s, 10m, 2h) or an RFC 3339 time")
    return parsed.timestamp()


def stack_containers(
    runtime: DockerRuntime, stack: Stack, component: str | None
) -> list[ContainerInfo]:
    names = [str(c) for c in START_ORDER]
    if component and component not in names:
        raise CliError(f"unknown component {component!r}; one of {', '.join(names)}")
    found = runtime.list_containers(stack.ref.name_labels())
    found = [c for c in found if not component or c.labels.get(LABEL_COMPONENT) == component]
    order = {n: i for i, n in enumerate(names)}
    return sorted(found, key=lambda c: (order.get(c.labels.get(LABEL_COMPONENT, ""), 9), c.name))


def _lines(
    runtime: DockerRuntime,
    info: ContainerInfo,
    since: float | None,
    tail: int | None,
    follow: bool,
) -> Iterator[Line]:
    comp = info.labels.get(LABEL_COMPONENT, info.name)
    for raw in runtime.logs(info.id, since=since, tail=tail, follow=follow):
        text = raw.decode(errors="replace").rstrip("\n")
        at, _, rest = text.partition(" ")
        yield Line(at, comp, rest)


def collect(
    runtime: DockerRuntime,
    containers: list[ContainerInfo],
    since: float | None = None,
    tail: int | None = None,
) -> list[Line]:
    """Every container's lines, merged by time (a stable sort keeps each one's order)."""
    out: list[Line] = []
    for info in containers:
        out.extend(_lines(runtime, info, since, tail, follow=False))
    return sorted(out, key=lambda line: line.at)


def follow(
    runtime: DockerRuntime,
    containers: list[ContainerInfo],
    since: float | None,
    tail: int | None,
    width: int,
) -> None:
    """Backlog merged by time, then new lines as each container writes them."""
    lines: queue.Queue[Line | BaseException] = queue.Queue()
    backlog = collect(runtime, containers, since, tail)
    for line in backlog:
        print(line.render(width), flush=False)
    sys.stdout.flush()
    start = now().timestamp()

    def pump(info: ContainerInfo) -> None:
        try:
            for line in _lines(runtime, info, start, None, follow=True):
                lines.put(line)
        except BaseException as exc:  # handed to the main thread, which reports it
            lines.put(exc)

    for info in containers:
        threading.Thread(target=pump, args=(info,), daemon=True).start()
    seen = {(x.at, x.component, x.text) for x in backlog}
    while True:
        item = lines.get()
        if isinstance(item, BaseException):
            raise item
        if (item.at, item.component, item.text) in seen:
            continue  # written in the second the backlog and the stream share
        print(item.render(width), flush=True)


def run(
    cluster: Cluster,
    name: str,
    component: str | None,
    since: str | None,
    tail: int | None,
    follow_: bool,
) -> int:
    stack = Stack(cluster.stack(name))
    runtime = engine(cluster, stack)
    containers = stack_containers(runtime, stack, component)
    if not containers:
        what = f"component {component}" if component else "container"
        raise CliError(
            f"stack {name} has no {what} on its Docker engine"
            + (" (it is hibernated)" if stack.spec.hibernated else "")
        )
    width = max(len(c.labels.get(LABEL_COMPONENT, "")) for c in containers)
    start = since_epoch(since)
    try:
        if follow_:
            follow(runtime, containers, start, tail, width)
        for line in collect(runtime, containers, start, tail):
            print(line.render(width))
    except KongMaskerError as exc:
        raise CliError(f"reading logs of stack {name}: {exc}") from exc
    return EXIT_OK
