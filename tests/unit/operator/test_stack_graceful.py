"""spec.restartStrategy and the graceful handover (core/graceful.py) on the in-memory fakes:
the order of runtime calls, the failure path and the leftovers of an interrupted handover."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT
from tests.unit.operator.operator_fakes import SECRETS, SPEC

from kongmasker.adapters.runtime import ExecResult
from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import START_ORDER, Component
from kongmasker.core import graceful
from kongmasker.core.stack import ActionKind, Executor, observe, plan
from kongmasker.errors import GracefulRestartFailed, InvalidSpec

pytestmark = pytest.mark.unit

NAMES = {c: naming.container_name("default", "demo", c) for c in START_ORDER}


def test_restart_strategy_defaults_to_recreate_and_parses_graceful() -> None:
    assert StackSpec.from_dict(SPEC).restart_strategy == "Recreate"
    assert StackSpec.from_dict({**SPEC, "restartStrategy": "Graceful"}).restart_strategy == (
        "Graceful"
    )
    with pytest.raises(InvalidSpec, match=r"spec\.restartStrategy: 'Rolling'"):
        StackSpec.from_dict({**SPEC, "restartStrategy": "Rolling"})


def test_crd_declares_the_strategy_enum_with_the_model_default() -> None:
    crd = yaml.safe_load((REPO_ROOT / "crds/kongmaskerstack.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    field = schema["properties"]["restartStrategy"]
    assert field["enum"] == ["Recreate", "Graceful"]
    assert field["default"] == StackSpec.from_dict({}).restart_strategy


def test_bridge_mode_is_not_supported() -> None:
    bridge = StackSpec.from_dict({**SPEC, "network": {"mode": "bridge", "name": "n"}})
    assert "Recreate" in (graceful.supported(bridge) or "")
    assert graceful.supported(StackSpec.from_dict(SPEC)) is None


def _running_stack(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    Executor(ref, spec, runtime, probes, SECRETS, settings).apply(
        desired, plan(desired, observe(runtime, ref, desired))
    )
    # What the data plane and nginx write once they serve.
    for c in runtime.containers.values():
        runtime.files[(c.id, "/tmp/kongmasker-ready")] = b"1\n"
        runtime.files[(c.id, "/run/nginx.pid")] = b"1\n"


class ReadyOnStart:
    """Wraps the fake runtime: a started container writes its ready file (unless `never`)."""

    def __init__(self, runtime: Any, never: set[str] | None = None) -> None:
        self._rt = runtime
        self.never = never or set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def start_container(self, container_id: str) -> None:
        self._rt.start_container(container_id)
        info = self._rt.get_container(container_id)
        if not any(info.name.endswith(f"-{c}-surge") for c in self.never):
            self._rt.files[(info.id, "/tmp/kongmasker-ready")] = b"1\n"
            self._rt.files[(info.id, "/run/nginx.pid")] = b"1\n"


def _handover(ref, spec, runtime, probes, settings) -> graceful.Handover:  # type: ignore[no-untyped-def]
    return graceful.Handover(ref, spec, runtime, probes, SECRETS, settings, sleep=lambda _s: None)


def test_handover_order_surge_gate_stop_remove_rename(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _running_stack(ref, spec, runtime, probes, settings, desired)
    before = {c.name: c.id for c in runtime.containers.values()}
    runtime.log.clear()
    rt = ReadyOnStart(runtime)
    h = _handover(ref, spec, rt, probes, settings)
    h.run(desired, observe(runtime, ref, desired))

    ops = [
        (op, arg)
        for op, arg in runtime.log
        if op in ("create", "start", "stop", "remove", "rename")
    ]
    redis = NAMES[Component.REDIS]
    expected = [("stop", redis), ("start", redis)]
    for comp in (Component.KONG, Component.NGINX, Component.BACKEND):
        name = NAMES[comp]
        expected += [
            ("create", f"{name}-surge"),
            ("start", f"{name}-surge"),
            ("stop", name),
            ("remove", name),
            ("rename", f"{name}-surge->{name}"),
        ]
    assert ops == expected
    # BGSAVE before Redis was stopped (same container, same volume).
    assert "BGSAVE" in probes.redis_calls
    after = {c.name: c.id for c in runtime.containers.values()}
    assert sorted(after) == sorted(NAMES.values()), "canonical names, no -surge left"
    assert after[redis] == before[redis]
    assert all(after[NAMES[c]] != before[NAMES[c]] for c in START_ORDER[1:])
    # The new containers carry the same labels (spec hash): the next plan has nothing to do.
    assert plan(desired, observe(runtime, ref, desired)) == []
    assert [c for c, _ in h.notes] == list(START_ORDER)


def test_a_surge_that_never_gets_ready_is_removed_and_the_old_one_keeps_serving(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _running_stack(ref, spec, runtime, probes, settings, desired)
    before = {c.name: c.id for c in runtime.containers.values()}
    rt = ReadyOnStart(runtime, never={"nginx"})
    h = _handover(ref, spec, rt, probes, settings)
    with pytest.raises(GracefulRestartFailed, match=r"nginx: no /run/nginx\.pid") as err:
        h.run(desired, observe(runtime, ref, desired))
    assert "old container keeps serving" in err.value.message
    names = {c.name: c for c in runtime.containers.values()}
    assert sorted(names) == sorted(NAMES.values()), "the surge container was removed"
    old_nginx = names[NAMES[Component.NGINX]]
    assert old_nginx.id == before[old_nginx.name] and old_nginx.running
    # Kong was handed over before; Backend was not touched.
    assert names[NAMES[Component.KONG]].id != before[NAMES[Component.KONG]]
    assert names[NAMES[Component.BACKEND]].id == before[NAMES[Component.BACKEND]]
    assert [c for c, _ in h.notes] == [Component.REDIS, Component.KONG]


def test_leftovers_of_an_interrupted_handover_are_cleaned_up(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _running_stack(ref, spec, runtime, probes, settings, desired)
    kong, backend = desired[Component.KONG].container, desired[Component.BACKEND].container
    # Crash after the surge started: both run; the surge is an extra and is removed.
    extra = runtime.create_container(replace(kong, name=kong.name + "-surge"))
    runtime.start_container(extra.id)
    # Crash after the old one was removed: only the surge runs; it is renamed, not recreated.
    old = runtime.get_container(backend.name)
    runtime.remove_container(old.id)
    surge = runtime.create_container(replace(backend, name=backend.name + "-surge"))
    runtime.start_container(surge.id)
    actions = plan(desired, observe(runtime, ref, desired))
    assert [(a.kind, a.component, a.container_id) for a in actions] == [
        (ActionKind.REMOVE, Component.KONG, extra.id),
        (ActionKind.RENAME, Component.BACKEND, surge.id),
    ]
    Executor(ref, spec, runtime, probes, SECRETS, settings).apply(desired, actions)
    assert sorted(c.name for c in runtime.containers.values()) == sorted(NAMES.values())
    assert runtime.get_container(backend.name).id == surge.id
    assert plan(desired, observe(runtime, ref, desired)) == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("1\n", "net.ipv4.tcp_migrate_req=1"), ("0\n", "may be reset"), ("", "unknown")],
)
def test_migrate_note_reads_the_sysctl_in_a_stack_container(
    ref, spec, runtime, probes, settings, desired, answer, expected
) -> None:  # type: ignore[no-untyped-def]
    _running_stack(ref, spec, runtime, probes, settings, desired)
    observed = observe(runtime, ref, desired)
    calls: list[list[str]] = []

    class Sysctl(ReadyOnStart):
        def exec(self, container_id: str, command: list[str], env: Any = None) -> ExecResult:
            calls.append(command)
            return ExecResult(0 if answer else 1, answer)

    note = graceful.migrate_note(Sysctl(runtime), observed)
    assert expected in note
    assert calls == [["cat", "/proc/sys/net/ipv4/tcp_migrate_req"]]


def _reconcile(runtime, probes, ref, settings, *, never: set[str] | None = None):  # type: ignore[no-untyped-def]
    from tests.unit.operator.test_exit_budget import Secrets, Status, running_stack

    from kongmasker.core import reconcile as core

    spec_raw = {**SPEC, "restartStrategy": "Graceful"}
    running_stack(runtime, ref, StackSpec.from_dict(spec_raw))
    for c in runtime.containers.values():
        runtime.files[(c.id, "/tmp/kongmasker-ready")] = b"1\n"
        runtime.files[(c.id, "/run/nginx.pid")] = b"1\n"
    annotations = {"kongmasker.io/restartedAt": "t1"}

    class Unchanged(Status):  # the object as loaded: nothing supersedes the reconcile
        def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None:
            meta = {"uid": ref.uid, "generation": 1, "annotations": annotations}
            return {"metadata": meta}

    status = Unchanged()
    deps = core.Deps(
        runtime_for=lambda url, tls: ReadyOnStart(runtime, never),
        probes=probes,
        secrets=Secrets(),
        status=status,
        settings=settings,
    )
    result = core.reconcile(core.StackObject(ref, 1, spec_raw, {}, annotations), deps)
    return result, status


def test_reconcile_graceful_restart_reports_progress_events_and_restarted_at(
    runtime, probes, ref, settings
) -> None:  # type: ignore[no-untyped-def]
    result, status = _reconcile(runtime, probes, ref, settings)
    assert result.error is None
    assert result.status is not None and result.status["restartedAt"] == "t1"
    assert result.status["phase"] == "Ready"
    assert {p.get("phase") for p in status.patches[:-1]} == {"Progressing"}
    reasons = [e.reason for e in result.events]
    assert reasons.count("HandedOver") == 4 and "Restarting" not in reasons
    done = next(e for e in result.events if e.reason == "Restarted")
    assert done.message.startswith("graceful restart done: redis, kong, nginx, backend in ")
    assert sorted(c.name for c in runtime.containers.values()) == sorted(NAMES.values())


def test_reconcile_graceful_restart_that_stops_is_degraded_and_keeps_serving(
    runtime, probes, ref, settings
) -> None:  # type: ignore[no-untyped-def]
    result, _ = _reconcile(runtime, probes, ref, settings, never={"backend"})
    assert isinstance(result.error, GracefulRestartFailed)
    assert result.status is not None and result.status["phase"] == "Degraded"
    assert result.status["restartedAt"] == "t1", "handled: not retried in a loop"
    degraded = next(c for c in result.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "GracefulRestartFailed"
    assert "backend: no /tmp/kongmasker-ready" in degraded["message"]
    warning = next(e for e in result.events if e.reason == "GracefulRestartFailed")
    assert warning.warning and "set a new kongmasker.io/restartedAt value" in warning.message
    names = sorted(c.name for c in runtime.containers.values())
    assert names == sorted(NAMES.values()) and all(c.running for c in runtime.containers.values())


class KongHealth:
    """A real Kong image: no ready file; `kong health` inside it answers `exit_code`."""

    def __init__(self, runtime: Any, exit_code: int) -> None:
        self._rt = ReadyOnStart(runtime, never={"kong"})
        self.exit_code = exit_code
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def exec(self, container_id: str, command: list[str], env: Any = None) -> ExecResult:
        if command == ["kong", "health"]:
            self.asked.append(container_id)
            return ExecResult(self.exit_code, "")
        return self._rt.exec(container_id, command, env)


@pytest.mark.parametrize("healthy", [True, False])
def test_a_kong_without_the_ready_file_is_judged_by_kong_health(
    ref, spec, runtime, probes, settings, desired, healthy: bool
) -> None:  # type: ignore[no-untyped-def]
    _running_stack(ref, spec, runtime, probes, settings, desired)
    before = runtime.get_container(NAMES[Component.KONG]).id
    settings = replace(settings, health=replace(settings.health, gate_timeout=0.0))
    rt = KongHealth(runtime, 0 if healthy else 1)
    h = _handover(ref, spec, rt, probes, settings)
    if healthy:
        h.run(desired, observe(runtime, ref, desired))
        assert runtime.get_container(NAMES[Component.KONG]).id != before
    else:
        with pytest.raises(GracefulRestartFailed, match="kong: no /tmp/kongmasker-ready"):
            h.run(desired, observe(runtime, ref, desired))
        assert runtime.get_container(NAMES[Component.KONG]).id == before
    assert rt.asked, "kong health was asked inside the new container"
