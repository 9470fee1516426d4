"""Benchmark of the operator's own footprint (issue 5): CPU and memory of one operator process
with 0, 1 and 10 KongMaskerStacks under the health watch; prints figures, asserts nothing
about speed.

    eval "$(make -s env)"
    .venv/bin/python tests/load/bench_footprint.py --stacks 1 10 --window 60
    .venv/bin/python tests/load/bench_footprint.py --stacks 1 10 --window 60 --ref HEAD

Creates a scratch namespace with the two Secrets the stacks use, starts one mock AI upstream
container shared by every stack (as tests/e2e does) and ONE operator scoped to the namespace
(`python -m kongmasker --namespace NS`, a child process in its own session so that Ctrl-C
reaches only this script), with the health watch on at its defaults
(KONGMASKER_MONITOR_ENABLED=true; every other KONGMASKER_* setting at the operator's default,
except metrics and liveness on free 127.0.0.1 ports, as the Deployment has them).

Then, for the idle baseline (0 stacks) and each N of --stacks in turn, it applies stacks until
N exist (distinct 127.0.0.1 ports, host networking), waits until every one is Ready
(`kubectl wait`, with a deadline) and samples the operator for --window seconds:
- CPU: utime+stime of /proc/<pid>/stat (every thread of the process, plus cutime+cstime of
  reaped children) at the start and end of the window -> mean % of one core;
- memory: Rss, Pss and USS (Private_Clean+Private_Dirty) of /proc/<pid>/smaps_rollup, every
  --sample seconds -> value at the end of the window and peak;
- threads (/proc/<pid>/status), and the watch's own counters from the operator's /metrics
  (probes run and canary runs during the window), to show the watch was working.

The operator runs from this checkout (uncommitted edits included; the script says how many),
or with --ref REF from `git archive REF operator` unpacked in a temporary directory, so that
the figures name a commit.

Everything is removed at the end, also on failure or Ctrl-C: the stacks are deleted through
the API (the operator stops them gracefully), the operator is stopped, any container or
volume left behind is removed, the namespace is deleted. At most 10 stacks (40 containers).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

from tests.support import free_port, wait_until  # noqa: E402

STATE = REPO / ".local"
KUBECTL = Path.home() / ".cache/kongmasker/bin/kubectl"
MAX_STACKS = 10
PASSWORD = "bench-footprint-redis-pw"
BENCH_LABEL = {"app.kubernetes.io/part-of": "kongmasker", "kongmasker.io/bench": "footprint"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
KB_MIB = 1 / 1024  # smaps_rollup counts in kB


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    kubeconfig = os.environ.get("KUBECONFIG") or str(STATE / "kubeconfig")
    cmd = [str(KUBECTL), "--kubeconfig", kubeconfig, *args]
    out = subprocess.run(cmd, input=input, text=True, capture_output=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


# -- /proc sampling ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime+stime of every thread of `pid`, plus cutime+cstime of its reaped children."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is state
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


def memory_mib(pid: int) -> dict[str, float]:
    """Rss, Pss and USS (private pages) from /proc/<pid>/smaps_rollup, in MiB."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        kb[key.strip()] = int(rest.split()[0])
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0) + kb.get("Private_Hugetlb", 0)
    return {"rss": kb["Rss"] * KB_MIB, "pss": kb["Pss"] * KB_MIB, "uss": uss * KB_MIB}


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Threads line for {pid}")


def children(pid: int) -> list[int]:
    """Live descendant processes (the operator is expected to have none)."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            raw = stat.read_text()
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
                child = int(stat.parent.name)
                found += [child, *children(child)]
    return found


def metric_sum(metrics_url: str, name: str) -> float:
    """Sum of every series of a counter on the operator's /metrics."""
    text = httpx.get(metrics_url, timeout=10).text
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


@dataclass
class Window:
    stacks: int
    containers: int
    seconds: float
    cpu_pct: float
    mem_end: dict[str, float]
    mem_peak: dict[str, float]
    threads_end: int
    threads_peak: int
    probes: float
    canaries: float
    ready_seconds: float | None
    children: int


def sample(
    pid: int, window: float, every: float, metrics_url: str, stacks: int, containers: int
) -> Window:
    """Sample the operator for `window` seconds (CPU from the two ends, memory every `every`)."""
    probes0 = metric_sum(metrics_url, "kongmasker_health_checks_total")
    canaries0 = metric_sum(metrics_url, "kongmasker_canary_requests_total")
    t0, cpu0 = time.monotonic(), cpu_seconds(pid)
    end = t0 + window
    peak = {"rss": 0.0, "pss": 0.0, "uss": 0.0}
    threads_peak = 0
    mem: dict[str, float] = peak
    n_threads = 0
    kids: set[int] = set()
    while True:
        mem = memory_mib(pid)
        peak = {k: max(peak[k], v) for k, v in mem.items()}
        n_threads = threads(pid)
        threads_peak = max(threads_peak, n_threads)
        kids.update(children(pid))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(every, end - now))  # the sampling period, not a synchronisation
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return Window(
        stacks=stacks,
        containers=containers,
        seconds=t1 - t0,
        cpu_pct=100 * (cpu1 - cpu0) / (t1 - t0),
        mem_end=mem,
        mem_peak=peak,
        threads_end=n_threads,
        threads_peak=threads_peak,
        probes=metric_sum(metrics_url, "kongmasker_health_checks_total") - probes0,
        canaries=metric_sum(metrics_url, "kongmasker_canary_requests_total") - canaries0,
        ready_seconds=None,
        children=len(kids),
    )


# -- the scratch environment ---------------------------------------------------------------


@dataclass
class Bench:
    client: docker.DockerClient
    namespace: str
    mock_url: str = ""
    log: Path = Path()
    operator: subprocess.Popen[bytes] | None = None
    metrics_url: str = ""
    stacks: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)
    source: str = ""

    def manifest(self, name: str) -> dict[str, Any]:
        redis, proxy, admin, status, nginx, backend = self.free_ports(6)
        spec = {
            "upstream": {"url": self.mock_url, "apiKeySecretRef": {"name": "upstream"}},
            "redis": {"port": redis, "passwordSecretRef": {"name": "redis"}},
            "kong": {"proxyPort": proxy, "adminPort": admin, "statusPort": status},
            "nginx": {"port": nginx},
            "backend": {"port": backend},
            "stopGracePeriodSeconds": 5,
        }
        return {
            "apiVersion": "kongmasker.io/v1alpha1",
            "kind": "KongMaskerStack",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }

    def free_ports(self, n: int) -> list[int]:
        """`n` free 127.0.0.1 ports, distinct from each other and from every port handed out
        before in this run (free_port alone may return a port twice: nothing binds it until
        the operator starts the container)."""
        out: list[int] = []
        while len(out) < n:
            port = free_port()
            if port not in self.ports:
                self.ports.add(port)
                out.append(port)
        return out

    def containers(self, running: bool = False) -> list[Any]:
        label = f"kongmasker.io/stack-namespace={self.namespace}"
        return list(self.client.containers.list(all=not running, filters={"label": label}))

    def scale(self, n: int, timeout: float) -> float:
        """Apply (or delete) stacks until `n` exist; wait until all are Ready. -> seconds."""
        t0 = time.perf_counter()
        while len(self.stacks) > n:
            kubectl("delete", "kms", self.stacks.pop(), "-n", self.namespace, "--timeout=180s")
        new = [f"s{i:02d}" for i in range(len(self.stacks), n)]
        if new:
            docs = {"apiVersion": "v1", "kind": "List", "items": [self.manifest(s) for s in new]}
            kubectl("apply", "-f", "-", input=json.dumps(docs))
            self.stacks += new
        if self.stacks:
            out = subprocess.run(
                [
                    str(KUBECTL),
                    "--kubeconfig",
                    os.environ.get("KUBECONFIG") or str(STATE / "kubeconfig"),
                    "wait",
                    "--for=condition=Ready",
                    f"--timeout={int(timeout)}s",
                    "-n",
                    self.namespace,
                    *(f"kms/{s}" for s in self.stacks),
                ],
                text=True,
                capture_output=True,
                check=False,
            )
            if out.returncode != 0:
                phases = kubectl("get", "kms", "-n", self.namespace, check=False)
                raise RuntimeError(
                    f"stacks not Ready within {timeout:.0f}s: {out.stderr.strip()}\n{phases}"
                    f"operator log:\n{self.tail()}"
                )
        return time.perf_counter() - t0

    def tail(self, n: int = 30) -> str:
        if not self.log.is_file():
            return ""
        lines = [x for x in self.log.read_text(errors="replace").splitlines() if "httpx" not in x]
        return "\n".join(lines[-n:])


def operator_env(metrics_port: int, liveness_port: int) -> dict[str, str]:
    """Operator defaults: every KONGMASKER_* of the caller's shell dropped, then the watch on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONGMASKER_")}
    env.update(
        KONGMASKER_MONITOR_ENABLED="true",
        KONGMASKER_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
        KONGMASKER_OPERATOR_LIVENESS_PORT=str(liveness_port),
    )
    return env


SHOW_SETTINGS = """
import kongmasker
from kongmasker.config import Settings
s = Settings.from_env()
m = s.monitor
print(
    f"operator code {kongmasker.__file__.rsplit('/', 2)[0]}\\n"
    f"operator settings: monitor.enabled={m.enabled}, probes every {m.interval:g} s "
    f"(timeout {s.health.probe_timeout:g} s, threshold {m.failure_threshold}), "
    f"canary every {m.canary_interval:g} s (per-type timing {m.canary_per_type_timing}), "
    f"resources every {m.resources_interval:g} s; reconcile every {s.reconcile.interval:g} s; "
    f"metrics on {s.metrics.addr}, liveness on port {s.operator.liveness_port}"
)
"""


def print_settings(env: dict[str, str]) -> None:
    """The settings as the operator's own code reads them from `env` (same interpreter and
    import path as the operator), so that the figures name what was measured."""
    out = subprocess.run(
        [sys.executable, "-c", SHOW_SETTINGS],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        check=True,
    )
    print(out.stdout.strip(), flush=True)


def operator_source(ref: str | None, tmp: Path) -> tuple[dict[str, str], str]:
    """-> (extra env, description) of the operator code to run: the checkout as it is, or
    `git archive REF operator` unpacked in `tmp` (the figures then name a commit, not a
    working tree other engineers may be editing)."""
    git = ["git", "-C", str(REPO)]
    if ref is None:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], **_TEXT).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "operator"], **_TEXT).stdout
        n = len(dirty.splitlines())
        return {}, f"checkout at {head}" + (f" + uncommitted changes in {n} file(s)" if n else "")
    commit = subprocess.run([*git, "rev-parse", "--short", ref], **_TEXT).stdout.strip()
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.run([*git, "archive", commit, "operator"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return {"PYTHONPATH": str(src / "operator")}, f"commit {commit} ({ref})"


_TEXT: dict[str, Any] = {"text": True, "capture_output": True, "check": True}


@contextmanager
def scratch(client: docker.DockerClient, ref: str | None) -> Iterator[Bench]:
    """Namespace, Secrets, mock upstream, operator; all removed on the way out."""
    bench = Bench(client, f"bench-fp-{uuid.uuid4().hex[:6]}")
    mock = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    bench.log = tmp / "operator.log"
    try:
        kubectl("create", "namespace", bench.namespace)
        for name, key, value in (("redis", "password", PASSWORD), ("upstream", "api-key", "k")):
            kubectl(
                "create",
                "secret",
                "generic",
                name,
                "-n",
                bench.namespace,
                f"--from-literal={key}={value}",
            )
        (port,) = bench.free_ports(1)
        mock = client.containers.run(
            "kongmasker/mockupstream:dev",
            detach=True,
            name=f"km-{bench.namespace}-mock",
            network_mode="host",
            environment={"MOCK_LISTEN": f"127.0.0.1:{port}"},
            labels=BENCH_LABEL,
        )
        bench.mock_url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(f"{bench.mock_url}/health").status_code == 200,
            timeout=60,
            what="mock upstream",
        )
        metrics_port, liveness_port = bench.free_ports(2)
        extra, bench.source = operator_source(ref, tmp)
        env = {**operator_env(metrics_port, liveness_port), **extra}
        print(f"operator: {bench.source}")
        print_settings(env)
        with bench.log.open("ab") as handle:
            bench.operator = subprocess.Popen(
                [sys.executable, "-m", "kongmasker", "--namespace", bench.namespace],
                cwd=REPO,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C is ours: the operator must outlive it
            )
        bench.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(
            lambda: (
                httpx.get(f"http://127.0.0.1:{liveness_port}/healthz").status_code == 200
                and httpx.get(bench.metrics_url).status_code == 200
            ),
            timeout=60,
            what="operator liveness and metrics",
        )
        yield bench
    finally:
        # A second Ctrl-C must not cut the clean-up short; every step below has a deadline.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cleanup(bench, mock)
            shutil.rmtree(tmp / "src", ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
            print(f"operator log: {bench.log}")


def cleanup(bench: Bench, mock: Any) -> None:
    ns = bench.namespace
    alive = bench.operator is not None and bench.operator.poll() is None
    if alive:
        kubectl("delete", "kms", "--all", "-n", ns, "--timeout=180s", check=False)
        with suppress(AssertionError):
            wait_until(lambda: not bench.containers(), timeout=60, what="stack containers gone")
    if bench.operator is not None and bench.operator.poll() is None:
        bench.operator.send_signal(signal.SIGTERM)
        try:
            bench.operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bench.operator.kill()
            bench.operator.wait()
    left = bench.containers()
    for c in left:
        with suppress(docker.errors.APIError):
            c.remove(force=True)
    for obj in kubectl("get", "kms", "-n", ns, "-o", "name", check=False).split():
        patch = '{"metadata":{"finalizers":[]}}'
        kubectl("patch", obj, "-n", ns, "--type=merge", "-p", patch, check=False)
    for v in bench.client.volumes.list(filters={"label": f"kongmasker.io/stack-namespace={ns}"}):
        with suppress(docker.errors.APIError):
            v.remove(force=True)
    if mock is not None:
        with suppress(docker.errors.APIError):
            mock.remove(force=True)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    print(
        f"cleaned up: namespace {ns} deleted, operator stopped "
        f"(exit {bench.operator.returncode if bench.operator else '-'}), "
        f"{len(left)} container(s) removed by force, "
        f"{len(bench.containers())} of the namespace's containers left",
        flush=True,
    )


def table(rows: list[Window]) -> str:
    head = (
        f"{'stacks':>6} {'containers':>10} {'cpu %':>6} {'rss MiB':>8} {'pss MiB':>8} "
        f"{'uss MiB':>8} {'peak rss/pss':>13} {'threads':>8} {'probes':>7} {'canaries':>8} "
        f"{'to Ready':>9}"
    )
    lines = [head, "-" * len(head)]
    for w in rows:
        ready = f"{w.ready_seconds:.1f} s" if w.ready_seconds is not None else "-"
        lines.append(
            f"{w.stacks:>6} {w.containers:>10} {w.cpu_pct:>6.1f} {w.mem_end['rss']:>8.1f} "
            f"{w.mem_end['pss']:>8.1f} {w.mem_end['uss']:>8.1f} "
            f"{w.mem_peak['rss']:>6.1f}/{w.mem_peak['pss']:<6.1f} "
            f"{w.threads_end:>3} ({w.threads_peak:>2}) {w.probes:>7.0f} {w.canaries:>8.0f} "
            f"{ready:>9}"
        )
    return "\n".join(lines)


def busy_note(operator_pid: int) -> str:
    """Load average and the other test runs and operators on the machine (they share its
    cores, so they weigh on the figures)."""
    found = subprocess.run(
        ["pgrep", "-af", r"pytest|tests/load/bench_|-m kongmasker( |$)"],
        text=True,
        capture_output=True,
        check=False,
    ).stdout.splitlines()
    mine = {os.getpid(), os.getppid(), operator_pid}
    others = [o for o in found if int(o.split()[0]) not in mine and o.split()[1] != "timeout"]
    pytest = sum("pytest" in o for o in others)
    operators = sum("-m kongmasker" in o for o in others)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"load average {load}; other runs: {pytest} pytest, {operators} operator(s)"


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 10], help="stack counts")
    parser.add_argument("--window", type=float, default=60, help="seconds sampled per count")
    parser.add_argument("--sample", type=float, default=1.0, help="memory sampling period (s)")
    parser.add_argument(
        "--ref", default=None, help="run the operator code of this git commit (default: checkout)"
    )
    parser.add_argument("--ready-timeout", type=float, default=240, help="deadline to Ready")
    args = parser.parse_args()
    if any(not 1 <= n <= MAX_STACKS for n in args.stacks):
        parser.error(f"--stacks: between 1 and {MAX_STACKS} (at most {4 * MAX_STACKS} containers)")
    if not 5 <= args.window <= 120:
        parser.error("--window: between 5 and 120 seconds (keeps the run under ~10 minutes)")
    os.environ.setdefault("DOCKER_HOST", (STATE / "docker-host").read_text().strip())
    os.environ.setdefault("KUBECONFIG", str(STATE / "kubeconfig"))
    kubectl("get", "crd", "kongmaskerstacks.kongmasker.io")  # installed by make up / tests
    # SIGTERM (e.g. `timeout`) cleans up like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    started = time.strftime("%Y-%m-%d %H:%M")
    t_start = time.perf_counter()
    rows: list[Window] = []
    notes: list[str] = []
    with scratch(client, args.ref) as bench:
        assert bench.operator is not None
        pid = bench.operator.pid
        print(f"namespace {bench.namespace}, operator pid {pid}", flush=True)
        notes.append(f"at start: {busy_note(pid)}")
        for n in [0, *args.stacks]:
            ready = bench.scale(n, args.ready_timeout) if n else None
            running = len(bench.containers(running=True))
            if n:
                print(f"{n} stack(s) Ready after {ready:.1f} s ({running} containers)", flush=True)
            w = sample(pid, args.window, args.sample, bench.metrics_url, n, running)
            w.ready_seconds = ready
            rows.append(w)
            print(
                f"  {n} stack(s), {w.seconds:.0f} s: cpu {w.cpu_pct:.1f} % of one core, "
                f"rss {w.mem_end['rss']:.1f} MiB, pss {w.mem_end['pss']:.1f} MiB, "
                f"threads {w.threads_end}, {w.probes:.0f} probes, {w.canaries:.0f} canaries, "
                f"{w.children} child process(es)",
                flush=True,
            )
            notes.append(f"after {n} stack(s): {busy_note(pid)}")
    print(
        f"\nOperator footprint ({started}, {os.cpu_count()} CPUs, dockerd "
        f"{client.version()['Version']}, window {args.window:g} s, "
        f"whole run {time.perf_counter() - t_start:.0f} s; operator: {bench.source})"
    )
    print(table(rows))
    print("cpu %: of one core, mean over the window; rss/pss/uss: at the end of the window")
    print("(peak rss/pss over it); threads: at the end (peak); probes, canaries: run by the")
    print("watch during the window (operator's /metrics); to Ready: apply -> all Ready.")
    for note in notes:
        print(f"  {note}")
    client.close()


if __name__ == "__main__":
    main()
