from __future__ import annotations

from dataclasses import replace

import pytest
from tests.unit.operator.operator_fakes import SECRETS

from kongmasker.api import naming
from kongmasker.api.vocabulary import Component
from kongmasker.core.orphans import sweep
from kongmasker.core.render import StackRef, render_stack

pytestmark = pytest.mark.unit


def test_only_containers_of_gone_stacks_in_scope_are_removed(ref, spec, runtime) -> None:  # type: ignore[no-untyped-def]
    live = render_stack(ref, spec, SECRETS, 20)[Component.REDIS].container
    gone = render_stack(StackRef("default", "old", "uid-gone"), spec, SECRETS, 20)
    elsewhere = render_stack(StackRef("other", "x", "uid-gone-2"), spec, SECRETS, 20)
    runtime.create_container(live)
    orphan = runtime.create_container(gone[Component.KONG].container)
    runtime.start_container(orphan.id)
    runtime.create_container(elsewhere[Component.KONG].container)
    unmanaged = dict(gone[Component.NGINX].container.labels)
    del unmanaged["app.kubernetes.io/managed-by"]
    runtime.create_container(replace(gone[Component.NGINX].container, labels=unmanaged))

    listed: list[str] = []

    def uids() -> set[str]:
        listed.append("stacks")
        return {"uid-1"}

    removed = sweep(runtime, uids, namespaces=("default",))
    assert removed == [naming.container_name("default", "old", "kong")]
    assert (
        "stop",
        naming.container_name("default", "old", "kong"),
    ) in runtime.log  # graceful: stop before remove
    names = {c.name for c in runtime.containers.values()}
    assert names == {
        naming.container_name("default", "demo", "redis"),
        naming.container_name("other", "x", "kong"),
        naming.container_name("default", "old", "nginx"),
    }
    assert listed == ["stacks"]


def test_exited_throwaway_containers_are_removed_running_ones_kept(runtime) -> None:  # type: ignore[no-untyped-def]
    from kongmasker.adapters.runtime import ContainerSpec
    from kongmasker.core.backup.rediscli import labels as scratch_labels
    from kongmasker.core.orphans import sweep_scratch

    def helper(name: str, status: str) -> None:
        info = runtime.create_container(ContainerSpec(name, "r", labels=scratch_labels("store")))
        runtime.containers[info.id] = replace(info, status=status)

    helper("km-scratch-store-left", "exited")  # its operator crashed, the sleep ran out
    helper("km-scratch-store-busy", "running")  # in use right now
    runtime.create_container(
        ContainerSpec(naming.container_name("default", "demo", "redis"), "r", labels={})
    )
    assert sweep_scratch(runtime) == ["km-scratch-store-left"]
    names = {c.name for c in runtime.containers.values()}
    assert names == {"km-scratch-store-busy", naming.container_name("default", "demo", "redis")}
