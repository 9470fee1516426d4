"""Session fixtures that bring up (or reuse) the real engines the tests run against.

Nothing here is faked: `docker_host` is a real dockerd started by hack/dockerd.sh,
`kubeconfig` a real kube-apiserver + etcd from hack/control-plane.sh, `images` the stack's
images built by hack/build-images.sh. Each fixture is idempotent, so a warm run reuses what
is already up. In CI (CI=true) a skipped integration or e2e test fails the run: an engine
that cannot start must show up as a failure, never as a quiet skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import REPO_ROOT

HACK = REPO_ROOT / "hack"
STATE_DIR = Path(os.environ.get("KONGMASKER_STATE", REPO_ROOT / ".local"))
ENGINE_MARKERS = ("integration", "e2e", "load", "kind")


# What the engine fixtures actually talked to, printed at the end of the run so the output
# shows which kube-apiserver and dockerd the e2e tests ran against.
_engines: dict[str, str] = {}


def _run_hack(*args: str) -> None:
    subprocess.run(["bash", str(HACK / args[0]), *args[1:]], check=True, cwd=REPO_ROOT)


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of a running dockerd (started if none answers); also exported."""
    _run_hack("dockerd.sh", "start")
    host = (STATE_DIR / "docker-host").read_text().strip()
    os.environ["DOCKER_HOST"] = host
    version = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DOCKER_HOST": host},
    ).stdout.strip()
    _engines["dockerd"] = f"{version} at {host}"
    return host


@pytest.fixture(scope="session")
def images(docker_host: str) -> dict[str, str]:
    """Name -> image tag of every image under images/, built when its inputs changed."""
    _run_hack("build-images.sh", "all")
    pairs = (STATE_DIR / "images.env").read_text().split()
    return dict(p.split("=", 1) for p in pairs)


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of an admin kubeconfig for the real kube-apiserver (started if not running)."""
    _run_hack("control-plane.sh", "start")
    path = str(STATE_DIR / "kubeconfig")
    os.environ["KUBECONFIG"] = path
    raw = subprocess.run(
        [str(_kubectl_binary()), "--kubeconfig", path, "version", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    server = json.loads(raw)["serverVersion"]
    _engines["kube-apiserver"] = f"{server['gitVersion']} ({server['platform']}), built by hack/"
    return path


def _kubectl_binary() -> Path:
    cache = Path(os.environ.get("KONGMASKER_CACHE", Path.home() / ".cache" / "kongmasker"))
    return cache / "bin" / "kubectl"


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Iterator[object]:
    """A function kubectl(*args, input=None) -> CompletedProcess using the built kubectl."""
    binary = _kubectl_binary()

    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "--kubeconfig", kubeconfig, *args],
            input=input,
            text=True,
            capture_output=True,
            check=check,
        )

    yield run


_ci_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get("CI") or not report.skipped:
        return
    if any(m in report.keywords for m in ENGINE_MARKERS):
        _ci_skips.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for name, version in _engines.items():
        terminalreporter.write_line(f"engine used: {name} {version}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _ci_skips:
        print(f"\nCI: {len(_ci_skips)} engine test(s) skipped, which CI treats as failure:")
        for nodeid in _ci_skips:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
