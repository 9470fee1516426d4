from __future__ import annotations

from dataclasses import replace

import pytest
from tests.unit.operator.operator_fakes import SECRETS, SPEC

from kongmasker.api import naming
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import LABEL_STACK_UID, START_ORDER, Component
from kongmasker.config import Settings
from kongmasker.core.render import StackRef, render_stack
from kongmasker.core.stack import ActionKind, Executor, observe, plan, stop_stack
from kongmasker.errors import HealthGateTimeout

pytestmark = pytest.mark.unit


def _converge(ref, spec, runtime, probes, settings, desired) -> Executor:  # type: ignore[no-untyped-def]
    ex = Executor(ref, spec, runtime, probes, SECRETS, settings)
    ex.apply(desired, plan(desired, observe(runtime, ref, desired)))
    return ex


def test_empty_host_creates_everything_in_dependency_order(ref, runtime, desired) -> None:  # type: ignore[no-untyped-def]
    actions = plan(desired, observe(runtime, ref, desired))
    assert [(a.kind, a.component) for a in actions] == [(ActionKind.CREATE, c) for c in START_ORDER]


def test_start_is_health_gated_and_ordered(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    ex = _converge(ref, spec, runtime, probes, settings, desired)
    starts = [name.rsplit("-", 1)[1] for op, name in runtime.log if op == "start"]
    assert starts == ["redis", "kong", "nginx", "backend"]
    assert all(h.ok for h in ex.health.values())
    # Config files are in place before the first start.
    assert runtime.log.index(
        ("create", naming.container_name("default", "demo", "kong"))
    ) < runtime.log.index(("start", naming.container_name("default", "demo", "kong")))


def test_converged_stack_plans_nothing(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    assert plan(desired, observe(runtime, ref, desired)) == []


def test_unhealthy_component_holds_back_the_next(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    probes.sick.add("kong")
    with pytest.raises(HealthGateTimeout) as err:
        _converge(ref, spec, runtime, probes, settings, desired)
    assert err.value.component == "kong"
    started = {name for op, name in runtime.log if op == "start"}
    assert started == {
        naming.container_name("default", "demo", "redis"),
        naming.container_name("default", "demo", "kong"),
    }
    # The next pass waits on kong again before creating nginx.
    with pytest.raises(HealthGateTimeout, match="nginx is held back"):
        _converge(ref, spec, runtime, probes, settings, desired)


def test_drift_deleted_stopped_and_duplicated(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    by_name = {c.name: c for c in runtime.containers.values()}
    runtime.remove_container(by_name[naming.container_name("default", "demo", "nginx")].id)
    runtime.stop_container(by_name[naming.container_name("default", "demo", "redis")].id)
    dup = runtime.create_container(replace(desired[Component.BACKEND].container, name="copy"))
    actions = plan(desired, observe(runtime, ref, desired))
    kinds = {(a.kind, a.component) for a in actions}
    assert (ActionKind.START, Component.REDIS) in kinds
    assert (ActionKind.CREATE, Component.NGINX) in kinds
    assert (ActionKind.REMOVE, Component.BACKEND) in kinds
    assert next(a for a in actions if a.kind is ActionKind.REMOVE).container_id == dup.id
    Executor(ref, spec, runtime, probes, SECRETS, settings).apply(desired, actions)
    names = sorted(c.name for c in runtime.containers.values())
    assert names == sorted(naming.container_name("default", "demo", c) for c in START_ORDER)
    assert plan(desired, observe(runtime, ref, desired)) == []


def test_foreign_image_or_spec_is_recreated(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    kong = next(c for c in runtime.containers.values() if c.name.endswith("-kong"))
    runtime.containers[kong.id] = replace(kong, image="someone/else:latest")
    actions = plan(desired, observe(runtime, ref, desired))
    assert (actions[0].kind, actions[0].component) == (ActionKind.RECREATE, Component.KONG)
    # nginx re-resolves the recreated Kong by reloading its (unchanged) config.
    assert (ActionKind.APPLY_CONFIG, Component.NGINX) in [(a.kind, a.component) for a in actions]


def test_image_update_touches_only_that_component(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    new_spec = StackSpec.from_dict({**SPEC, "backend": {"image": "kongmasker/backend:v2"}})
    new = render_stack(ref, new_spec, SECRETS, 20)
    actions = plan(new, observe(runtime, ref, new))
    assert [(a.kind, a.component) for a in actions] == [(ActionKind.RECREATE, Component.BACKEND)]


def test_config_only_change_is_applied_live(ref, spec, runtime, probes, settings, desired) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    new_spec = StackSpec.from_dict(
        {**SPEC, "kong": {"routePaths": ["/v1", "/v2"]}, "nginx": {"proxyTimeoutSeconds": 120}}
    )
    new = render_stack(ref, new_spec, SECRETS, 20)
    actions = plan(new, observe(runtime, ref, new))
    assert [(a.kind, a.component) for a in actions] == [
        (ActionKind.APPLY_CONFIG, Component.KONG),
        (ActionKind.APPLY_CONFIG, Component.NGINX),
    ]
    before = {c.id for c in runtime.containers.values()}
    Executor(ref, new_spec, runtime, probes, SECRETS, settings).apply(new, actions)
    assert {c.id for c in runtime.containers.values()} == before  # nothing restarted
    assert probes.posts and probes.posts[0][0].endswith(":8001/config")
    assert any(op == "exec" and "nginx -s reload" in arg for op, arg in runtime.log)
    assert plan(new, observe(runtime, ref, new)) == []


def test_orphans_of_an_earlier_incarnation_are_removed(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    old_ref = StackRef(ref.namespace, ref.name, "uid-old")
    old = render_stack(old_ref, spec, SECRETS, 20)
    orphan = runtime.create_container(replace(old[Component.REDIS].container, name="old-redis"))
    assert orphan.labels[LABEL_STACK_UID] == "uid-old"
    actions = plan(desired, observe(runtime, ref, desired))
    assert actions[0].kind is ActionKind.REMOVE and actions[0].container_id == orphan.id


def test_stop_is_reverse_order_and_persists_redis_first(
    ref, spec, runtime, probes, settings, desired
) -> None:  # type: ignore[no-untyped-def]
    _converge(ref, spec, runtime, probes, settings, desired)
    runtime.log.clear()
    notes = stop_stack(ref, spec, runtime, probes, SECRETS, Settings())
    stops = [name.rsplit("-", 1)[1] for op, name in runtime.log if op == "stop"]
    assert stops == ["backend", "nginx", "kong", "redis"]
    assert probes.redis_calls[-3:] == ["LASTSAVE", "BGSAVE", "LASTSAVE"]
    assert any("Redis saved" in n for n in notes)
    assert runtime.containers == {}
