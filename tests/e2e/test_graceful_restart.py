"""Graceful restart end to end: a stack with `restartStrategy: Graceful` is restarted by the
`kongmasker.io/restartedAt` annotation while a bounded load runs through Nginx and Backend, and
not one request fails.

Real kube-apiserver, dockerd, images and operator (scoped to the test's namespace); the mock
upstream stands in for the AI API. Every request opens its own connection (a client that reuses
an idle keep-alive connection the server is closing must retry it, as with any HTTP server).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.e2e.stack_env import COMPONENTS, StackEnv, epoch_ns
from tests.support import wait_until

pytestmark = pytest.mark.e2e

IDS = ["i-1234567890abcdef0", "vpc-0123456789abcdef0", "10.0.1.23"]


@dataclass
class Load:
    """`threads` workers sending requests carrying AWS identifiers until stopped."""

    proxy: str
    backend: str
    threads: int = 4
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> tuple[int, list[str]]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
        return self.sent, self.failures

    def _run(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            via_backend = n == 0 and i % 2 == 0  # some through Backend -> Nginx -> Kong
            error = self._one(f"worker {n} request {i}", via_backend)
            with self._lock:
                self.sent += 1
                if error:
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {error}")

    def _one(self, tag: str, via_backend: bool) -> str | None:
        text = f"{tag}: check {' and '.join(IDS)}"
        try:
            if via_backend:
                resp = httpx.post(f"{self.backend}/analyze", json={"text": text}, timeout=30)
                body = resp.json().get("analysis", "") if resp.status_code == 200 else resp.text
            else:
                resp = httpx.post(
                    f"{self.proxy}/v1/messages",
                    json={"model": "m", "max_tokens": 10,
                          "messages": [{"role": "user", "content": text}]},
                    headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                    timeout=30,
                )  # fmt: skip
                body = resp.text
        except httpx.HTTPError as exc:
            return f"{tag}: {type(exc).__name__}: {exc}"
        if resp.status_code != 200:
            return f"{tag}: HTTP {resp.status_code}: {body[:200]}"
        if not all(original in body for original in IDS):
            return f"{tag}: originals not restored: {body[:200]}"
        return None


def _containers(env: StackEnv, name: str) -> dict[str, dict[str, Any]]:
    out = {}
    for comp, found in env.by_component(name).items():
        assert len(found) == 1, f"{comp}: {[c.name for c in found]}"
        found[0].reload()
        out[comp] = {
            "id": found[0].id,
            "name": found[0].name,
            "started": found[0].attrs["State"]["StartedAt"],
        }
    return out


def test_graceful_restart_loses_no_request(stack_env: StackEnv) -> None:
    env = stack_env
    env.apply("gr", env.spec("gr", restartStrategy="Graceful"))
    status = env.wait_ready("gr")
    before = _containers(env, "gr")
    load = Load(status["endpoints"]["proxy"], status["endpoints"]["backend"])
    load.start()
    wait_until(lambda: load.sent >= 20, timeout=60, what="load running")
    sent_before = load.sent

    started = time.monotonic()
    env.kubectl("annotate", "kms", "gr", "-n", env.namespace, "kongmasker.io/restartedAt=g1")
    phases: set[str] = set()

    def restarted() -> dict[str, Any] | None:
        st = env.status("gr")
        phases.add(str(st.get("phase")))
        return st if st.get("restartedAt") == "g1" and st.get("phase") == "Ready" else None

    wait_until(restarted, timeout=240, interval=0.2, what="graceful restart handled, Ready")
    took = time.monotonic() - started
    # Keep the load on a little after Ready, through the last old container's exit.
    target = load.sent + 20
    wait_until(lambda: load.sent >= target, timeout=60, what="load after the restart")
    sent, failures = load.stop()
    print(
        f"graceful restart: {took:.1f}s; requests during the test {sent} "
        f"({sent - sent_before} after the annotation), failed {len(failures)}"
    )
    assert failures == [], "\n".join(failures[:20])
    assert "Progressing" in phases, f"phases seen: {phases}"

    after = _containers(env, "gr")
    for comp in COMPONENTS:
        assert after[comp]["name"] == env.container_name("gr", comp)
        assert epoch_ns(after[comp]["started"]) > epoch_ns(before[comp]["started"]), comp
    assert after["redis"]["id"] == before["redis"]["id"], "Redis restarted in place"
    assert all(after[c]["id"] != before[c]["id"] for c in ("kong", "nginx", "backend"))
    assert not [c.name for c in env.containers() if c.name.endswith("-surge")]

    events = env.events("gr")
    reasons = [e["reason"] for e in events]
    assert reasons.count("HandedOver") == 4, json.dumps([e["message"] for e in events], indent=1)
    done = next(e for e in events if e["reason"] == "Restarted")
    assert done["message"].startswith("graceful restart done: redis, kong, nginx, backend")
    assert "Restarting" not in reasons, "no stop-everything restart"
