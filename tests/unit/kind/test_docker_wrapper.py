"""hack/kind/docker, the `docker` kind sees: where the capability bounding set lacks
CAP_SYS_RESOURCE it rewrites `--privileged`, elsewhere it passes every argument through. The
real docker CLI is replaced by `echo`-like script that prints its arguments (the wrapper's
only effect is the argument list it hands on), and the bounding set by KONGMASKER_CAPBND."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.support import REPO_ROOT

pytestmark = pytest.mark.unit
WRAPPER = REPO_ROOT / "hack" / "kind" / "docker"
FULL = "000001ffffffffff"  # every capability
NO_SYS_RESOURCE = "000001fffeffffff"  # bit 24 (CAP_SYS_RESOURCE) cleared, as in this sandbox


def _run(tmp_path: Path, capbnd: str, *args: str) -> list[str]:
    fake = tmp_path / "real-docker"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    env = {**os.environ, "KONGMASKER_REAL_DOCKER": str(fake), "KONGMASKER_CAPBND": capbnd,
           "KONGMASKER_EMPTY_MODULES": str(tmp_path / "modules")}  # fmt: skip
    out = subprocess.run([str(WRAPPER), *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


KIND_RUN = ["run", "--name", "n", "--privileged", "--volume", "/var",
            "--volume", "/lib/modules:/lib/modules:ro", "img"]  # fmt: skip


def test_passes_through_where_privileged_works(tmp_path: Path) -> None:
    assert _run(tmp_path, FULL, *KIND_RUN) == KIND_RUN
    assert _run(tmp_path, FULL, "exec", "--privileged", "n", "true") == [
        "exec", "--privileged", "n", "true",
    ]  # fmt: skip


def test_rewrites_privileged_without_cap_sys_resource(tmp_path: Path) -> None:
    args = _run(tmp_path, NO_SYS_RESOURCE, *KIND_RUN)
    assert "--privileged" not in args
    assert {"--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt=systempaths=unconfined",
            "--device-cgroup-rule=a *:* rwm", "--device=/dev/kmsg"} <= set(args)  # fmt: skip
    if not Path("/lib/modules").is_dir():
        assert f"{tmp_path / 'modules'}:/lib/modules:ro" in args
    assert args[-1] == "img" and args[:3] == ["run", "--name", "n"]
    # exec inherits the node's capabilities: --privileged is dropped, nothing added.
    assert _run(tmp_path, NO_SYS_RESOURCE, "exec", "--privileged", "n", "true") == [
        "exec", "n", "true",
    ]  # fmt: skip
    # Other commands are untouched.
    assert _run(tmp_path, NO_SYS_RESOURCE, "ps", "-a") == ["ps", "-a"]
