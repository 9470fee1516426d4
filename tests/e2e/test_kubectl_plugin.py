"""`kubectl kongmasker ...` run as a user runs it: the built kubectl finds `kubectl-kongmasker`
on PATH and execs it as a subprocess, against the real kube-apiserver, the real dockerd and
the operator (scoped to this module's namespace).

One stack is shared by the module (the read-only verbs first, then restart, backup/restore,
and hibernation last, which changes it most). The only stand-in is the mock AI upstream.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
import redis
import yaml
from tests.e2e.stack_env import (
    COMPONENTS,
    PART_OF,
    REDIS_PASSWORD,
    UPSTREAM_KEY,
    Kubectl,
    StackEnv,
    _teardown,
    metric_samples,
    metric_value,
    start_operator,
)
from tests.support import REPO_ROOT, free_port, wait_until
from tests.unit.argocd.test_health_lua import health

pytestmark = pytest.mark.e2e
NAME = "plug"
BIN = Path(os.environ.get("KONGMASKER_CACHE", Path.home() / ".cache" / "kongmasker")) / "bin"
VENV_BIN = REPO_ROOT / ".venv" / "bin"


class Plugin:
    """`kubectl kongmasker` with PATH as `make env` sets it."""

    def __init__(self, env: StackEnv, metrics_url: str) -> None:
        self.env = env
        self.environ = {
            **os.environ,
            "PATH": f"{BIN}:{VENV_BIN}:{os.environ.get('PATH', '')}",
            "KONGMASKER_METRICS_URL": metrics_url,
            "KONGMASKER_OPERATOR_LOG": str(env.tmp / "operator.log"),
        }

    def argv(self, *args: str) -> list[str]:
        return [str(BIN / "kubectl"), "kongmasker", "-n", self.env.namespace, *args]

    def __call__(
        self, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        out = subprocess.run(
            self.argv(*args),
            env={**self.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        took = time.monotonic() - started
        print(f"$ kubectl kongmasker {' '.join(args)}  -> {out.returncode}  ({took:.2f}s)")
        print(out.stdout)
        if out.stderr:
            print(out.stderr)
        return out


@pytest.fixture(scope="module")
def plug(
    kubectl: Kubectl,
    stack_crd: None,
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StackEnv, Plugin]]:
    """One namespace, one operator (metrics on), one Ready stack for the whole module."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/stackbackups.kongmasker.io")
    tmp = tmp_path_factory.mktemp("plugin")
    port = free_port()
    mock = docker_client.containers.run(
        "kongmasker/mockupstream:dev",
        detach=True,
        name=f"km-e2e-mock-{uuid.uuid4().hex[:8]}",
        network_mode="host",
        environment={"MOCK_LISTEN": f"127.0.0.1:{port}"},
        labels={**PART_OF, "kongmasker.io/test": "e2e-plugin"},
    )
    mock_url = f"http://127.0.0.1:{port}"
    namespace = f"e2e-plugin-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    env = StackEnv(kubectl, docker_client, namespace, mock_url, tmp)
    metrics_port = free_port()
    try:
        wait_until(
            lambda: httpx.get(f"{mock_url}/health").status_code == 200, timeout=60, what="mock"
        )
        env.secrets()
        env.operator = start_operator(
            namespace,
            tmp / "operator.log",
            KONGMASKER_METRICS_ADDR=f"127.0.0.1:{metrics_port}",
            KONGMASKER_MONITOR_INTERVAL="2",
            KONGMASKER_MONITOR_CANARY_INTERVAL="5",
            KONGMASKER_MONITOR_RESOURCES_INTERVAL="2",
            # `backup --directory` writes under the test's own folder: an allowed root here.
            KONGMASKER_BACKUP_DIRECTORY_ROOTS=str(tmp),
        )
        env.apply(NAME, env.spec(NAME))
        env.wait_ready(NAME)
        yield env, Plugin(env, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        if env.operator is not None:
            _teardown(env)
        mock.remove(force=True)


def traffic(env: StackEnv, n: int = 5) -> None:
    """Requests with AWS identifiers through Nginx -> Kong (masked) -> mock upstream."""
    url = f"http://127.0.0.1:{env.ports[NAME]['nginx']}/v1/messages"
    for i in range(n):
        text = f"instance i-{i:017x} in 10.0.1.{i + 1} is slow"
        body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
        reply = httpx.post(url, json=body, headers={"x-api-key": "k"}, timeout=10)
        assert reply.status_code == 200, reply.text


# -- status ----------------------------------------------------------------------------------
def test_status_one_screen_and_machine_readable(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    wait_until(
        lambda: (env.status(NAME).get("watch") or {}).get("canary"), timeout=60, what="canary"
    )
    text = plugin("status", NAME)
    assert text.returncode == 0, text.stderr
    for part in ("Ready", "Conditions", "Components", "Masking canary", "Endpoints", "Backups",
                 "Last Warning Events", "kongmasker/gateway:dev"):  # fmt: skip
        assert part in text.stdout
    out = plugin("status", NAME, "-o", "json")
    assert out.returncode == 0
    s = json.loads(out.stdout)
    assert s["ready"] is True and s["phase"] == "Ready"
    assert set(s["components"]) == set(COMPONENTS)
    for comp, c in s["components"].items():
        assert c["state"] == "Healthy", comp
        assert c["image"].startswith("kongmasker/"), comp
        assert c["uptime"] != "-" and c["lastProbe"] == "Passed", comp
        assert c["lastProbeLatencySeconds"] is not None, comp
    assert s["canary"]["result"] == "Passed"
    assert s["endpoints"]["proxy"].endswith(str(env.ports[NAME]["nginx"]))
    assert {c["type"] for c in s["conditions"]} >= {"Ready", "Progressing", "Degraded"}
    assert yaml.safe_load(plugin("status", NAME, "-o", "yaml").stdout)["name"] == NAME


def test_status_errors_unknown_stack_and_not_ready_exit_code(
    plug: tuple[StackEnv, Plugin],
) -> None:
    env, plugin = plug
    unknown = plugin("status", "nope")
    assert unknown.returncode == 2
    assert "KongMaskerStack 'nope' not found" in unknown.stderr
    # A stack whose Secret is missing never gets Ready: preflight fails, nothing starts.
    env.apply("broken", env.spec("broken", redis={"passwordSecretRef": {"name": "absent"}}))
    env.wait_condition("broken", "PreflightPassed", "False", "SecretMissing")
    out = plugin("status", "broken")
    assert out.returncode == 1
    assert "SecretMissing" in out.stdout and "not Ready" in out.stdout
    assert "absent" in out.stdout  # the condition's message names the Secret to create
    env.delete("broken")


# -- logs ------------------------------------------------------------------------------------
def test_logs_interleaved_by_time_with_component_prefix(plug: tuple[StackEnv, Plugin]) -> None:
    _, plugin = plug
    out = plugin("logs", NAME, "--tail", "20")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    prefixes = {line.split("|")[0].strip() for line in lines}
    assert prefixes == set(COMPONENTS)
    stamps = [line.split("| ", 1)[1].split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)  # one timeline across the four containers
    kong = plugin("logs", NAME, "kong", "--since", "1h")
    assert kong.returncode == 0
    assert {line.split("|")[0].strip() for line in kong.stdout.splitlines()} == {"kong"}
    bad = plugin("logs", NAME, "mongo")
    assert bad.returncode == 2 and "unknown component 'mongo'" in bad.stderr


def test_logs_follow_shows_new_lines(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    proc = subprocess.Popen(
        plugin.argv("logs", NAME, "kong", "-f", "--tail", "0"),
        env=plugin.environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(
            lambda: (traffic(env, 1), any("/v1/messages" in s for s in seen))[1],
            timeout=30,
            what="a new kong log line",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        reader.join(timeout=5)


def test_engine_unreachable_is_a_clear_error(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    sock = env.tmp / "no-engine.sock"
    out = plugin("logs", NAME, DOCKER_HOST=f"unix://{sock}")
    assert out.returncode == 2
    assert f"cannot reach the Docker engine of stack {NAME} at unix://{sock}" in out.stderr
    assert "check DOCKER_HOST" in out.stderr
    assert "Traceback" not in out.stderr


# -- monitor ---------------------------------------------------------------------------------
def _requests_in(text: str) -> float | None:
    for token in text.split():
        if token.startswith("requests="):
            return float(token.split("=", 1)[1])
    return None


def test_monitor_through_a_pipe_prints_timestamped_lines_that_move(
    plug: tuple[StackEnv, Plugin],
) -> None:
    env, plugin = plug
    once = plugin("monitor", NAME, "--once", "--interval", "1")
    assert once.returncode == 0
    line = once.stdout.strip()
    assert line[:4].isdigit() and line[19] == "Z"  # 2026-12-01T15:00:00Z ...
    for part in ("phase=Ready", "redis=up", "kong=up", "nginx=up", "backend=up", "rps=",
                 "latency_ms_p50/p95/p99=", "masked_per_s=", "kong:cpu="):  # fmt: skip
        assert part in line
    proc = subprocess.Popen(
        plugin.argv("monitor", NAME, "--interval", "1"),
        env=plugin.environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: len(lines) >= 1, timeout=30, what="a first monitor line")
        before = _requests_in(lines[-1])
        assert before is not None
        traffic(env, 6)
        moved = wait_until(
            lambda: next(
                (ln for ln in lines if (_requests_in(ln) or 0) >= before + 6 and "rps=-" not in ln),
                None,
            ),
            timeout=30,
            what="requests= to move",
        )
        assert "cpu=-" not in moved, moved  # the operator's resource sampler answered
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        reader.join(timeout=5)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux missing: hack/deps.sh installs it")
def test_monitor_in_a_real_terminal(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    session = f"kmplug-{uuid.uuid4().hex[:6]}"
    # The pane's command gets its environment spelled out: a tmux server hands new panes its
    # own environment, not the client's.
    pinned = ("PATH", "KUBECONFIG", "DOCKER_HOST", "KONGMASKER_METRICS_URL")
    assigns = [shlex.quote(f"{k}={plugin.environ[k]}") for k in pinned if k in plugin.environ]
    cmd = " ".join(["env", *assigns, *plugin.argv("monitor", NAME, "--interval", "1")])
    tmux_env = {**plugin.environ, "TERM": "xterm-256color"}

    def tmux(*args: str) -> str:
        return subprocess.run(  # a server of its own (-L): no one else's sessions or settings
            ["tmux", "-L", session, *args], env=tmux_env, capture_output=True, text=True, check=True
        ).stdout

    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd)
    tmux("set-option", "-t", session, "remain-on-exit", "on")
    try:
        screen = wait_until(
            lambda: (s := tmux("capture-pane", "-p", "-t", session)) and "Traffic" in s and s,
            timeout=30,
            what="the full-screen view",
        )
        print(screen)
        assert "Components" in screen and "Ctrl-C" in screen
        for comp in COMPONENTS:
            assert comp in screen

        def requests_on_screen() -> float | None:
            rows = tmux("capture-pane", "-p", "-t", session).splitlines()
            for i, row in enumerate(rows):
                if "req/s" in row:  # the row below the header holds the figures
                    cells = [c for c in rows[i + 2].replace("│", " ").split() if c]
                    return float(cells[1]) if len(cells) > 1 else None
            return None

        (first,) = wait_until(
            lambda: [v] if (v := requests_on_screen()) is not None else None,
            timeout=30,
            what="figures on screen",
        )
        traffic(env, 6)
        wait_until(
            lambda: (requests_on_screen() or 0) >= first + 6, timeout=30, what="figures to move"
        )
        tmux("send-keys", "-t", session, "C-c")
        status = wait_until(
            lambda: (
                (
                    tmux("display-message", "-p", "-t", session, "#{pane_dead} #{pane_dead_status}")
                    .strip()
                    .split()
                )
                if tmux("display-message", "-p", "-t", session, "#{pane_dead}").strip() == "1"
                else None
            ),
            timeout=15,
            what="the monitor to exit on Ctrl-C",
        )
        assert status == ["1", "0"]
        after = tmux("capture-pane", "-p", "-t", session)
        assert "Traceback" not in after
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], check=False, env=tmux_env)


# -- report ----------------------------------------------------------------------------------
def test_report_bundle_has_every_part_and_no_secret(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    traffic(env, 3)
    target = env.tmp / "report.tar.gz"
    out = plugin("report", NAME, "-o", str(target))
    assert out.returncode == 0, out.stderr
    unpacked = env.tmp / "report"
    with tarfile.open(target) as tar:
        tar.extractall(unpacked, filter="data")
    (top,) = list(unpacked.iterdir())
    manifest = json.loads((top / "manifest.json").read_text())
    print(json.dumps(manifest, indent=2))
    assert manifest["missing"] == {}, manifest["missing"]
    expected = {"stack.yaml", "stackbackups.yaml", "events.yaml", "config/kong.yml",
                "config/nginx.conf", "operator.log", "metrics/operator.txt",
                "metrics/gateway.txt", "metrics/backend.txt"}  # fmt: skip
    expected |= {f"containers/{c}.inspect.json" for c in COMPONENTS}
    expected |= {f"logs/{c}.log" for c in COMPONENTS}
    assert set(manifest["parts"]) == expected
    for part, size in manifest["parts"].items():
        assert (top / part).stat().st_size == size, part
        assert size > 0, part
    assert {"kubectl-kongmasker", "kubernetes", "docker"} <= set(manifest["versions"])
    assert "aws-masker" in (top / "config/kong.yml").read_text()
    assert "{vault://env/redis-password}" in (top / "config/kong.yml").read_text()
    assert yaml.safe_load((top / "stack.yaml").read_text())["status"]["phase"] == "Ready"
    inspect = json.loads((top / "containers/redis.inspect.json").read_text())
    assert "REDIS_PASSWORD=<redacted>" in inspect["Config"]["Env"]
    # The Secrets' values must not occur anywhere in the unpacked bundle, in any form.
    for path in top.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in (REDIS_PASSWORD, UPSTREAM_KEY):
                assert value.encode() not in data, f"{value} in {path.relative_to(top)}"


# -- restart, backup, restore ----------------------------------------------------------------
def test_restart_waits_and_reports_progress(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    before = {c: env.by_component(NAME)[c][0].attrs["State"]["StartedAt"] for c in COMPONENTS}
    out = plugin("restart", NAME, "--wait", "--timeout", "180")
    assert out.returncode == 0, out.stderr
    assert "annotated kongmasker.io/restartedAt=" in out.stdout and "restarted" in out.stdout
    assert "phase" in out.stdout  # progress lines while waiting
    value = env.get(NAME)["metadata"]["annotations"]["kongmasker.io/restartedAt"]
    assert env.status(NAME)["restartedAt"] == value
    for comp in COMPONENTS:
        (container,) = env.by_component(NAME)[comp]
        assert container.attrs["State"]["StartedAt"] > before[comp], comp
    # --graceful: the strategy a user would set, then the same annotation; zero downtime.
    ids = {c: env.by_component(NAME)[c][0].id for c in COMPONENTS}
    out = plugin("restart", NAME, "--graceful", "--wait", "--timeout", "180")
    assert out.returncode == 0, out.stderr
    assert "spec.restartStrategy: Recreate -> Graceful" in out.stdout
    assert env.get(NAME)["spec"]["restartStrategy"] == "Graceful"
    handed = env.events_with(NAME, "HandedOver")
    assert {e["message"].split(":")[0] for e in handed} >= {"kong", "nginx", "backend"}, handed
    assert all(env.by_component(NAME)[c][0].id != ids[c] for c in ("kong", "nginx", "backend"))


# -- hibernation (before backup/restore: a restore restarts Redis, whose exit Events are
# Warnings this test must not confuse with its own) ------------------------------------------
def test_hibernate_keeps_every_key_and_leaves_nothing_running(
    plug: tuple[StackEnv, Plugin],
) -> None:
    env, plugin = plug
    r = _redis(env)
    for i in range(200):
        r.set(f"plugin:hibernate:{i:03d}", f"i-{i:017x}", ex=86400 if i % 2 else None)
    ours = {k: r.dump(k) for k in r.scan_iter("plugin:hibernate:*")}
    before = set(r.scan_iter())  # with the gateway's mappings and the canary's counters
    warnings_before = {e["metadata"]["name"] for e in env.events(NAME) if e["type"] == "Warning"}

    on = plugin("hibernate", "on", NAME, "--wait", "--timeout", "120")
    assert on.returncode == 0, on.stderr
    assert "hibernated" in on.stdout
    status = env.status(NAME)
    assert status["phase"] == "Hibernated"
    assert env.condition(NAME, "Ready")["reason"] == "Hibernated"
    assert env.containers(NAME) == []
    volumes = env.client.volumes.list(
        filters={"label": f"kongmasker.io/stack-namespace={env.namespace}"}
    )
    assert volumes, "the Redis data volume must be kept"
    obj = env.get(NAME)
    st = obj["status"]
    seen = {  # the fields the script reads (the test's Lua literal writer knows no newlines)
        "kind": obj["kind"],
        "metadata": {"generation": obj["metadata"]["generation"]},
        "spec": {k: obj["spec"].get(k) for k in ("paused", "hibernated")},
        "status": {k: st[k] for k in ("phase", "observedGeneration", "conditions")},
    }
    assert health(seen) == (
        "Suspended",
        "Hibernated (spec.hibernated): stopped, data volume kept",
    )  # what Argo CD shows: manifests/argocd/health-kongmasker.lua under Lua 5.1
    assert plugin("hibernate", "status", NAME).returncode == 0
    assert plugin("status", NAME).returncode == 1  # hibernated is not Ready
    # A watch round or two passes: nothing is restarted and nothing is alerted.
    reconciled = status["lastReconcileTime"]
    wait_until(
        lambda: env.status(NAME)["lastReconcileTime"] != reconciled, timeout=60, what="reconcile"
    )
    assert env.containers(NAME) == []
    hib = env.events_with(NAME, "Hibernated")
    assert hib and "Redis saved" in hib[0]["message"], hib
    new_warnings = [
        (e["reason"], e["message"])
        for e in env.events(NAME)
        if e["type"] == "Warning" and e["metadata"]["name"] not in warnings_before
    ]
    assert new_warnings == []
    # No series left that an alert rule could fire on (stack_ready == 0, component_up == 0).
    samples = metric_samples(plugin.environ["KONGMASKER_METRICS_URL"])
    for metric in ("kongmasker_operator_stack_ready", "kongmasker_component_up"):
        assert metric_value(samples, metric, namespace=env.namespace, name=NAME) is None, metric

    off = plugin("hibernate", "off", NAME, "--wait", "--timeout", "180")
    assert off.returncode == 0, off.stderr
    assert plugin("status", NAME).returncode == 0
    r = _redis(env)
    # The canary keeps writing (counters, stats), so every key is back and ours unchanged.
    assert before <= set(r.scan_iter())
    assert {k: r.dump(k) for k in r.scan_iter("plugin:hibernate:*")} == ours
    assert all(0 < r.ttl(f"plugin:hibernate:{i:03d}") <= 86400 for i in range(1, 200, 2))
    assert len(env.containers(NAME)) == 4


def _redis(env: StackEnv) -> redis.Redis:
    return redis.Redis(port=env.ports[NAME]["redis"], password=REDIS_PASSWORD, socket_timeout=10)


def test_backup_and_restore_write_stackbackups_and_wait(plug: tuple[StackEnv, Plugin]) -> None:
    env, plugin = plug
    store = env.tmp / "backups"
    store.mkdir()
    r = _redis(env)
    r.set("plugin:before", "1")
    out = plugin("backup", NAME, "--backup-name", "b1", "--directory", str(store), "--wait")
    assert out.returncode == 0, out.stderr
    assert "stackbackup/b1 created" in out.stdout and "phase Validated" in out.stdout
    obj = json.loads(env.kubectl("get", "stackbackup", "b1", "-n", env.namespace,
                                 "-o", "json").stdout)  # fmt: skip
    assert obj["spec"] == {**obj["spec"], "stackRef": {"name": NAME}, "type": "Backup"}
    r.set("plugin:after", "1")
    out = plugin("restore", NAME, "--from", "b1", "--restore-name", "r1", "--wait")
    assert out.returncode == 0, out.stderr
    assert "phase Restored" in out.stdout
    wait_until(lambda: _redis(env).get("plugin:before") == b"1", timeout=60, what="restored")
    assert _redis(env).get("plugin:after") is None  # the backup's data, not the later write
    env.wait_ready(NAME)
    missing = plugin("restore", NAME, "--from", "no-such-backup")
    assert missing.returncode == 2 and "StackBackup 'no-such-backup' not found" in missing.stderr
    status = json.loads(plugin("status", NAME, "-o", "json").stdout)
    assert status["backups"]["lastValidated"]["name"] == "b1"
