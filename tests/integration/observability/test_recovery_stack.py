"""Recovery pieces together on real containers, without the reconcile loop: probe rounds
through the operator's health gates (core/watch.py) see a hung Kong that Docker still calls
"running", the recovery plan restarts it and re-verifies Nginx; an exit seen in Docker's event
stream is restarted at once. The operator's own e2e tests cover the same through kopf."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest
from prometheus_client import REGISTRY
from tests.integration.observability.obs_support import Stack, hand_wired_stack
from tests.support import wait_until

from kongmasker import metrics
from kongmasker.adapters.probes import NetProbes
from kongmasker.api.vocabulary import Component, Reason
from kongmasker.core.recovery import Action, Decision, Policy
from kongmasker.core.watch import StackWatch, probe_round

pytestmark = pytest.mark.integration

NS = "obs-rec"
STACK_COMPONENTS = (Component.REDIS, Component.KONG, Component.NGINX)


@pytest.fixture(scope="module")
def stack(docker_host: str, images: dict[str, str]) -> Iterator[Stack]:
    with hand_wired_stack(docker_host, images, NS) as box:
        yield box
        metrics.forget_observability(NS, box.ref.name)


def _round(watch: StackWatch, stack: Stack, probes: NetProbes) -> dict[Component, Decision]:
    probe_round(watch, stack.spec, probes, stack.secrets, components=STACK_COMPONENTS)
    return {d.component: d for d in watch.plan() if d.component in STACK_COMPONENTS}


def _restart(stack: Stack, watch: StackWatch, decision: Decision) -> None:
    cid = stack.ids[str(decision.component)]
    stack.runtime.stop_container(cid, timeout=2)
    stack.runtime.start_container(cid)
    watch.record_restart(decision.component, decision.reason or "")


def test_a_hung_gateway_is_detected_restarted_and_nginx_reverified(
    stack: Stack, docker_host: str
) -> None:
    policy = Policy(failure_threshold=3, startup_grace=1, backoff_initial=1, budget=3, window=300)
    watch = StackWatch(NS, stack.ref.name, policy=policy)
    probes = NetProbes(timeout=1.0)
    assert all(d.action is Action.NONE for d in _round(watch, stack, probes).values())

    client = docker.DockerClient(base_url=docker_host)
    try:
        client.api.kill(stack.ids["kong"], signal="SIGSTOP")  # hung, not exited
        decisions = wait_until(
            lambda: (
                (d := _round(watch, stack, probes))[Component.KONG].action is Action.RESTART and d
            ),
            timeout=90,
            what="the recovery plan to restart the hung Kong",
        )
        # Docker still reports it running: its restart policy would never act.
        assert stack.runtime.get_container(stack.ids["kong"]).status == "running"  # type: ignore[union-attr]
        assert decisions[Component.KONG].reason is Reason.PROBES_FAILING
        assert Component.NGINX in decisions[Component.KONG].reverify
        assert decisions[Component.NGINX].action in (Action.NONE, Action.OBSERVE, Action.BLOCKED)
        _restart(stack, watch, decisions[Component.KONG])
    finally:
        client.close()

    def recovered() -> bool:
        answers = probe_round(watch, stack.spec, probes, stack.secrets, components=STACK_COMPONENTS)
        decisions = [d for d in watch.plan() if d.component in STACK_COMPONENTS]
        return all(a.ok for a in answers.values()) and all(
            d.action is Action.NONE for d in decisions
        )

    wait_until(recovered, timeout=90, what="every component healthy again after the restart")
    labels = {"namespace": NS, "name": stack.ref.name, "component": "kong"}
    assert REGISTRY.get_sample_value("kongmasker_component_up", labels) == 1
    actions = REGISTRY.get_sample_value(
        "kongmasker_recovery_actions_total", {**labels, "reason": "ProbesFailing"}
    )
    assert actions == 1


def test_an_exit_seen_in_the_event_stream_is_restarted_at_once(stack: Stack) -> None:
    watch = StackWatch(NS, stack.ref.name, policy=Policy(startup_grace=1))
    since = time.time() - 1
    stack.runtime.stop_container(stack.ids["nginx"], timeout=5)
    wait_until(
        lambda: any(
            e.action == "die" and e.container_id == stack.ids["nginx"]
            for e in stack.runtime.events(stack.ref.stack_labels(), since, time.time())
        ),
        timeout=30,
        what="the nginx die event",
    )
    watch.record_exit(Component.NGINX)
    nginx = {d.component: d for d in watch.plan()}[Component.NGINX]
    assert (nginx.action, nginx.reason) == (Action.RESTART, Reason.CONTAINER_EXITED)
    stack.runtime.start_container(stack.ids["nginx"])
    watch.record_restart(Component.NGINX, nginx.reason or "")
    stack.wait_healthy(Component.NGINX)
    assert {d.component: d for d in watch.plan()}[Component.NGINX].action is Action.NONE
