"""Auto-recovery decisions (kongmasker.core.recovery): pure functions, tested on histories."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kongmasker.api.vocabulary import START_ORDER, Component, Reason
from kongmasker.core import recovery
from kongmasker.core.recovery import (
    Action,
    Observation,
    Policy,
    Probe,
    Restart,
    decide,
    dependencies,
    dependents,
    escalations,
    plan,
)

pytestmark = pytest.mark.unit

REDIS, KONG, NGINX, BACKEND = START_ORDER
POLICY = Policy(
    failure_threshold=3,
    startup_grace=10,
    backoff_initial=5,
    backoff_factor=2,
    backoff_max=60,
    budget=3,
    window=300,
)


def failing(*times: float, message: str = "HTTP 503") -> Observation:
    return Observation(probes=[Probe(t, False, message) for t in times])


def test_doctests() -> None:
    assert doctest.testmod(recovery).failed == 0


def test_dependency_order() -> None:
    assert dependencies(REDIS) == ()
    assert dependencies(NGINX) == (REDIS, KONG)
    assert dependents(REDIS) == (KONG, NGINX, BACKEND)
    assert dependents(NGINX) == (BACKEND,)
    assert dependents(BACKEND) == ()


def test_healthy_component_needs_nothing() -> None:
    obs = Observation(probes=[Probe(1, False), Probe(2, True)])
    assert decide(KONG, 3, obs, (), POLICY).action is Action.NONE


def test_failures_below_threshold_are_observed() -> None:
    d = decide(KONG, 3, failing(1, 2), (), POLICY)
    assert d.action is Action.OBSERVE
    assert d.reason is Reason.PROBES_FAILING
    assert "2/3" in d.message


def test_hung_component_restarted_past_threshold_and_dependents_reverified() -> None:
    d = decide(KONG, 4, failing(1, 2, 3, message="Kong /status/ready: HTTP 503"), (), POLICY)
    assert d.action is Action.RESTART
    assert d.reason is Reason.PROBES_FAILING
    assert "HTTP 503" in d.message
    assert d.reverify == (NGINX, BACKEND)


def test_a_success_breaks_the_run_of_failures() -> None:
    obs = Observation(probes=[Probe(1, False), Probe(2, False), Probe(3, True), Probe(4, False)])
    assert decide(KONG, 5, obs, (), POLICY).action is Action.OBSERVE


def test_exit_is_acted_on_at_once_without_probes() -> None:
    d = decide(NGINX, 50, Observation(exited_at=49), (), POLICY)
    assert (d.action, d.reason) == (Action.RESTART, Reason.CONTAINER_EXITED)


def test_exit_before_our_last_restart_is_already_handled() -> None:
    obs = Observation(exited_at=40)
    assert decide(NGINX, 50, obs, [Restart(41, NGINX)], POLICY).action is Action.NONE


def test_probes_inside_startup_grace_do_not_count() -> None:
    restarts = [Restart(100, KONG)]
    assert decide(KONG, 109, failing(101, 105, 109), restarts, POLICY).action is Action.NONE
    obs = failing(101, 105, 110, 111, 112)
    assert decide(KONG, 200, obs, restarts, POLICY).action is Action.RESTART


def test_dependency_restart_resets_the_dependents_failures() -> None:
    # Nginx failed because Kong was hung; Kong was restarted at 100: Nginx is re-verified.
    obs = failing(90, 95, 99, 104)
    assert decide(NGINX, 105, obs, [Restart(100, KONG)], POLICY).action is Action.NONE
    still = failing(90, 95, 111, 112, 113)
    assert decide(NGINX, 114, still, [Restart(100, KONG)], POLICY).action is Action.RESTART


def test_backoff_waits_between_restarts() -> None:
    restarts = [Restart(100, KONG, "ContainerExited")]
    d = decide(KONG, 102, Observation(exited_at=101), restarts, POLICY)
    assert (d.action, d.reason, d.retry_at) == (Action.WAIT, Reason.RESTART_BACKOFF, 105)
    assert decide(KONG, 105, Observation(exited_at=101), restarts, POLICY).action is Action.RESTART
    two = [*restarts, Restart(105, KONG)]
    d = decide(KONG, 107, Observation(exited_at=106), two, POLICY)
    assert (d.action, d.retry_at) == (Action.WAIT, 115)


def test_budget_exhausted_escalates_until_the_window_frees_a_slot() -> None:
    restarts = [Restart(t, KONG) for t in (100, 110, 130)]
    d = decide(KONG, 200, Observation(exited_at=199), restarts, POLICY)
    assert (d.action, d.reason) == (Action.ESCALATE, Reason.RESTART_BUDGET_EXHAUSTED)
    assert d.retry_at == 400
    assert "budget 3 exhausted" in d.message
    assert decide(KONG, 401, Observation(exited_at=399), restarts, POLICY).action is Action.RESTART


def test_other_components_restarts_do_not_use_the_budget() -> None:
    restarts = [Restart(t, REDIS) for t in (100, 110, 130)]
    assert decide(KONG, 200, Observation(exited_at=199), restarts, POLICY).action is Action.RESTART


def test_plan_heals_in_dependency_order() -> None:
    obs = {KONG: failing(1, 2, 3), NGINX: failing(1, 2, 3), BACKEND: Observation(exited_at=2)}
    decisions = plan(4, obs, (), POLICY)
    assert [d.component for d in decisions] == list(START_ORDER)
    by = {d.component: d for d in decisions}
    assert by[REDIS].action is Action.NONE
    assert by[KONG].action is Action.RESTART
    assert by[NGINX].action is Action.BLOCKED
    assert by[NGINX].reason is Reason.DEPENDENCY_UNHEALTHY
    assert "kong" in by[NGINX].message
    assert by[BACKEND].action is Action.BLOCKED


def test_plan_blocks_dependents_of_an_escalated_component_and_reports_it() -> None:
    restarts = [Restart(t, REDIS) for t in (100, 110, 130)]
    obs = {REDIS: Observation(exited_at=199), BACKEND: failing(190, 195, 199)}
    decisions = plan(200, obs, restarts, POLICY)
    assert [d.component for d in escalations(decisions)] == [REDIS]
    assert decisions[-1].action is Action.BLOCKED


def test_observing_dependency_does_not_block() -> None:
    obs = {KONG: failing(3), NGINX: Observation(exited_at=3)}
    by = {d.component: d.action for d in plan(4, obs, (), POLICY)}
    assert by[KONG] is Action.OBSERVE
    assert by[NGINX] is Action.RESTART


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"budget": 0},
        {"window": 0},
        {"backoff_factor": 0.5},
        {"backoff_initial": 10, "backoff_max": 5},
        {"startup_grace": -1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)  # type: ignore[arg-type]


policies = st.builds(
    Policy,
    failure_threshold=st.integers(1, 5),
    startup_grace=st.floats(0, 30),
    backoff_initial=st.floats(0, 20),
    backoff_factor=st.floats(1, 4),
    backoff_max=st.just(120.0),
    budget=st.integers(1, 6),
    window=st.floats(10, 900),
)


@given(policies, st.integers(0, 10_000))
def test_backoff_is_monotonic_and_capped(policy: Policy, n: int) -> None:
    assert 0 <= policy.backoff(n) <= policy.backoff_max
    assert policy.backoff(n) <= policy.backoff(n + 1)


@settings(max_examples=60, deadline=None)
@given(
    policy=policies,
    component=st.sampled_from(list(Component)),
    probe_interval=st.floats(0.5, 10),
    exits=st.booleans(),
)
def test_a_component_that_never_recovers_causes_no_restart_storm(
    policy: Policy, component: Component, probe_interval: float, exits: bool
) -> None:
    """Simulate the watch loop against a component that fails forever: within any window the
    budget holds and consecutive restarts respect the backoff."""
    restarts: list[Restart] = []
    probes: list[Probe] = []
    now = 0.0
    horizon = 3 * policy.window + 10 * probe_interval
    while now < horizon:
        probes.append(Probe(now, False, "no answer"))
        obs = Observation(probes=probes[-20:], exited_at=now if exits else None)
        decision = {d.component: d for d in plan(now, {component: obs}, restarts, policy)}[
            component
        ]
        if decision.action is Action.NONE:  # only while the last restart's grace runs
            assert restarts
            assert now - restarts[-1].at <= policy.startup_grace + probe_interval
        if decision.action is Action.RESTART:
            recent = [r for r in restarts if now - policy.window < r.at <= now]
            assert len(recent) < policy.budget
            if recent:
                assert now - recent[-1].at >= policy.backoff(len(recent)) - 1e-9
            restarts.append(Restart(now, component))
        now += probe_interval
    for r in restarts:
        in_window = [x for x in restarts if r.at <= x.at < r.at + policy.window]
        assert len(in_window) <= policy.budget
    assert restarts, "a failing component is restarted at least once"


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(list(Component)),
        st.tuples(st.lists(st.booleans(), max_size=6), st.one_of(st.none(), st.floats(0, 100))),
    ),
    st.lists(st.tuples(st.floats(0, 100), st.sampled_from(list(Component))), max_size=6),
)
def test_plan_never_restarts_a_dependent_of_a_failing_component(
    raw: dict[Component, tuple[list[bool], float | None]],
    raw_restarts: list[tuple[float, Component]],
) -> None:
    obs = {
        c: Observation([Probe(float(i), ok) for i, ok in enumerate(oks)], exited)
        for c, (oks, exited) in raw.items()
    }
    restarts = [Restart(t, c) for t, c in raw_restarts]
    decisions = plan(100.0, obs, restarts, POLICY)
    failing_set = {d.component for d in decisions if d.action not in (Action.NONE, Action.OBSERVE)}
    for d in decisions:
        if d.action is Action.RESTART:
            assert not failing_set.intersection(dependencies(d.component))
