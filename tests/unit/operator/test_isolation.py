"""Tenant isolation (issue 11) on the in-memory engine: names that cannot collide, volumes a
stack may use, the migration off the legacy names, and operator identities.

The engine is tests/unit/operator/operator_fakes.FakeRuntime (as strict about owners as the
Docker adapter); the real engine is exercised by tests/e2e/test_isolation.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as hs
from tests.unit.operator.operator_fakes import SECRETS, SPEC, FakeRuntime

from kongmasker.adapters.runtime import ContainerInfo, ContainerSpec
from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import LABEL_OPERATOR, START_ORDER, Component, Reason
from kongmasker.core import preflight
from kongmasker.core.migrate import migrate_legacy
from kongmasker.core.orphans import sweep
from kongmasker.core.render import StackRef, render_stack, volume_labels
from kongmasker.errors import PreflightFailed, RuntimeOperationError

pytestmark = pytest.mark.unit

DNS_LABEL = hs.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


def test_the_reported_colliding_pair_gets_different_names() -> None:
    a, b = ("adv-7", "x-y"), ("adv-7-x", "y")
    assert naming.legacy_container_name(*a, "redis") == naming.legacy_container_name(*b, "redis")
    for comp in START_ORDER:
        assert naming.container_name(*a, comp) != naming.container_name(*b, comp)
    assert naming.redis_volume(*a) != naming.redis_volume(*b)


@given(DNS_LABEL, DNS_LABEL, DNS_LABEL, DNS_LABEL)
def test_names_are_injective_in_namespace_and_name(ns1: str, n1: str, ns2: str, n2: str) -> None:
    if (ns1, n1) != (ns2, n2):
        assert naming.stack_prefix(ns1, n1) != naming.stack_prefix(ns2, n2)
    assert naming.parse_prefix(naming.stack_prefix(ns1, n1)) == (ns1, n1)


def test_names_never_look_like_throwaway_or_surge_names() -> None:
    name = naming.container_name("scratch", "x", "kong")
    assert not name.startswith("km-scratch-")
    assert naming.surge_name(name).endswith(naming.SURGE_SUFFIX)
    with pytest.raises(ValueError):
        naming.parse_prefix("km-scratch-store-1")


def test_render_uses_the_naming_owner(ref: StackRef, spec: StackSpec) -> None:
    desired = render_stack(ref, spec, SECRETS, 20)
    for comp in START_ORDER:
        assert desired[comp].container.name == naming.container_name("default", "demo", comp)
    assert set(desired[Component.REDIS].container.volumes) == {
        naming.redis_volume("default", "demo")
    }


# -- volumes ---------------------------------------------------------------------------------


def _with_volume(spec_volume: str | None) -> StackSpec:
    redis = {**SPEC["redis"], "persistence": {"volumeName": spec_volume}} if spec_volume else {}
    return StackSpec.from_dict({**SPEC, "redis": redis or SPEC["redis"]})


def test_a_volume_of_another_stack_is_refused(runtime: FakeRuntime, ref: StackRef) -> None:
    victim = StackRef("team-a", "prod", "uid-a")
    runtime.ensure_volume(naming.redis_volume("team-a", "prod"), volume_labels(victim))
    spec = _with_volume(naming.redis_volume("team-a", "prod"))
    with pytest.raises(PreflightFailed) as err:
        preflight.volume(runtime, ref, spec)
    assert err.value.reason == Reason.FOREIGN_VOLUME
    assert "spec.redis.persistence.volumeName" in err.value.message
    assert "team-a/prod" in err.value.message


def test_a_volume_not_made_by_the_operator_is_refused(runtime: FakeRuntime, ref: StackRef) -> None:
    runtime.volumes["hand-made"] = {}
    with pytest.raises(PreflightFailed, match="not made by the operator"):
        preflight.volume(runtime, ref, _with_volume("hand-made"))


def test_own_new_or_reincarnated_volumes_are_accepted(runtime: FakeRuntime, ref: StackRef) -> None:
    preflight.volume(runtime, ref, _with_volume("fresh-one"))  # absent: made for this stack
    earlier = StackRef(ref.namespace, ref.name, "uid-of-an-earlier-incarnation")
    runtime.ensure_volume(naming.redis_volume(ref.namespace, ref.name), volume_labels(earlier))
    preflight.volume(runtime, ref, _with_volume(None))


def test_created_volumes_carry_the_stack_uid(ref: StackRef) -> None:
    assert volume_labels(ref)["kongmasker.io/stack-uid"] == ref.uid


# -- migration of legacy names ---------------------------------------------------------------


class CopyingRuntime(FakeRuntime):
    """The fake engine, plus a migration copy container that exits with `copy_exit`."""

    copy_exit = 0

    def start_container(self, container_id: str) -> None:
        super().start_container(container_id)
        c = self._find(container_id)
        assert c is not None
        if c.name.startswith("km-scratch-migrate-"):
            self.containers[c.id] = replace(c, status="exited", exit_code=self.copy_exit)


def _legacy(runtime: FakeRuntime, ref: StackRef, comp: str) -> ContainerInfo:
    """A container as the previous version made it: legacy name, no operator label."""
    labels = dict(render_stack(ref, StackSpec.from_dict(SPEC), SECRETS, 20)[comp].container.labels)
    labels.pop(LABEL_OPERATOR, None)
    cid = f"legacy-{ref.namespace}-{comp}"
    name = naming.legacy_container_name(ref.namespace, ref.name, comp)
    info = ContainerInfo(cid, name, "img", labels, "running")
    runtime.containers[cid] = info
    return info


def test_migration_moves_containers_and_data_of_this_stack_only() -> None:
    runtime = CopyingRuntime()
    mine = StackRef("adv-7-x", "y", "uid-mine")
    other = StackRef("adv-7", "x-y", "uid-other")
    for comp in START_ORDER:
        _legacy(runtime, mine, comp)
    old_vol = naming.legacy_redis_volume("adv-7-x", "y")
    runtime.volumes[old_vol] = {  # as the previous version labelled it
        "kongmasker.io/stack-namespace": "adv-7-x",
        "kongmasker.io/stack-name": "y",
    }
    stopped: list[str] = []

    def stop(comp: Component, cid: str) -> str:
        stopped.append(str(comp))
        return "stopped"

    spec = StackSpec.from_dict(SPEC)
    # The other stack of the pair has the same legacy names: it must leave them alone.
    assert migrate_legacy(runtime, other, spec, stop) == []
    assert len(runtime.containers) == 4 and old_vol in runtime.volumes

    notes = migrate_legacy(runtime, mine, spec, stop, sleep=lambda _: None)
    assert stopped == ["backend", "nginx", "kong", "redis"]  # reverse order, Redis saves last
    assert runtime.containers == {}  # legacy ones and the copy container are gone
    new_vol = naming.redis_volume("adv-7-x", "y")
    assert old_vol not in runtime.volumes and runtime.volumes[new_vol]["kongmasker.io/stack-uid"]
    assert any(f"volume {old_vol} copied to {new_vol}" in n for n in notes)
    assert migrate_legacy(runtime, mine, spec, stop) == []  # done once


def test_a_failed_copy_keeps_the_legacy_volume_and_fails() -> None:
    runtime = CopyingRuntime()
    runtime.copy_exit = 1
    ref = StackRef("ns", "demo", "uid-1")
    old_vol = naming.legacy_redis_volume("ns", "demo")
    runtime.volumes[old_vol] = {
        "kongmasker.io/stack-namespace": "ns",
        "kongmasker.io/stack-name": "demo",
    }
    with pytest.raises(RuntimeOperationError, match="exit code 1"):
        migrate_legacy(runtime, ref, StackSpec.from_dict(SPEC), lambda c, i: "", sleep=lambda _: 0)
    assert old_vol in runtime.volumes
    assert naming.redis_volume("ns", "demo") not in runtime.volumes  # retried next time
    assert runtime.containers == {}


# -- operator identity -----------------------------------------------------------------------


def _shared(owner_a: str, owner_b: str) -> tuple[FakeRuntime, FakeRuntime]:
    """Two operators' views of one engine."""
    a, b = FakeRuntime(owner_a), FakeRuntime(owner_b)
    b.containers, b.volumes = a.containers, a.volumes
    return a, b


def test_sweep_touches_only_its_own_operators_containers(spec: StackSpec) -> None:
    a, b = _shared("op-a", "op-b")
    theirs = render_stack(StackRef("ns", "s", "uid-a"), spec, SECRETS, 20)
    for d in theirs.values():
        a.start_container(a.create_container(d.container).id)
    assert sweep(b, lambda: set()) == []  # b knows no stack, yet leaves a's alone
    assert len(a.containers) == 4
    assert all(c.labels[LABEL_OPERATOR] == "op-a" for c in a.containers.values())


def test_another_operators_objects_cannot_be_removed(spec: StackSpec) -> None:
    a, b = _shared("op-a", "op-b")
    info = a.create_container(ContainerSpec("km-x", "img", labels={"k": "v"}))
    a.ensure_volume("vol", {})
    with pytest.raises(RuntimeOperationError, match="op-a"):
        b.remove_container(info.id, force=True)
    with pytest.raises(RuntimeOperationError, match="op-a"):
        b.stop_container(info.id)
    with pytest.raises(RuntimeOperationError, match="op-a"):
        b.remove_volume("vol")
    assert b.list_containers({"k": "v"}) == [] and len(a.list_containers({"k": "v"})) == 1


def test_a_volume_of_another_operator_is_refused_even_for_the_same_stack_name(
    spec: StackSpec,
) -> None:
    a, b = _shared("op-a", "op-b")
    ref = StackRef("ns", "demo", "uid-a")
    a.ensure_volume(naming.redis_volume("ns", "demo"), volume_labels(ref))
    with pytest.raises(PreflightFailed, match="belongs to operator 'op-a'"):
        preflight.volume(b, StackRef("ns", "demo", "uid-b"), spec)
    preflight.volume(a, StackRef("ns", "demo", "uid-a2"), spec)


# -- values written into redis.conf ----------------------------------------------------------


def _redis_env(ref: StackRef, user_env: dict[str, str], password: str) -> dict[str, str]:
    raw = {
        **SPEC,
        "redis": {**SPEC["redis"], "env": [{"name": k, "value": v} for k, v in user_env.items()]},
    }
    spec = StackSpec.from_dict(raw)
    secrets = {**SECRETS, "REDIS_PASSWORD": password}
    return dict(render_stack(ref, spec, secrets, 20)[Component.REDIS].container.env)


@pytest.mark.parametrize(
    ("user_env", "field"),
    [
        (
            {"REDIS_LOGLEVEL": "notice\nmaxmemory-policy allkeys-lru"},
            "spec.redis.env[REDIS_LOGLEVEL]",
        ),
        (
            {"REDIS_LOGLEVEL": 'notice\nrename-command FLUSHALL ""'},
            "spec.redis.env[REDIS_LOGLEVEL]",
        ),
        ({"REDIS_MAXMEMORY": "1mb\nappendonly no"}, "spec.redis.env[REDIS_MAXMEMORY]"),
    ],
)
def test_a_line_break_cannot_add_a_directive(
    ref: StackRef, user_env: dict[str, str], field: str
) -> None:
    from kongmasker.core.confvalues import check_redis_env

    with pytest.raises(PreflightFailed) as err:
        check_redis_env(_redis_env(ref, user_env, "pw"), user_env)
    assert err.value.reason == Reason.INVALID_CONFIG_VALUE
    assert err.value.message.startswith(field)
    assert "maxmemory-policy" not in err.value.message and "rename" not in err.value.message


def test_password_with_spaces_and_quotes_passes_line_breaks_are_refused_unechoed(
    ref: StackRef,
) -> None:
    from kongmasker.core.confvalues import check_redis_env

    check_redis_env(_redis_env(ref, {}, "a b \"c\" 'd' \\e $f"), {})
    for bad in ("x\nrequirepass y", "x\ry", "x\x00y"):
        with pytest.raises(PreflightFailed) as err:
            check_redis_env(_redis_env(ref, {}, bad), {})
        assert "spec.redis.passwordSecretRef" in err.value.message
        assert bad not in err.value.message and "requirepass y" not in err.value.message
