"""spec.alerts.webhook: parsing and its errors, the CRD's defaults, where a stack's alerts go
(core/alerts.py precedence), the one-Event-per-problem channel, which Events become alerts,
and that the URL (it carries a token) is in no message, repr or error."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.support import REPO_ROOT

from kongmasker.api.spec import SEVERITIES, SecretKeyRef, StackSpec, WebhookSpec
from kongmasker.core import alerts
from kongmasker.core.status import EventNote
from kongmasker.errors import InvalidSpec, NotFound, TransientError

pytestmark = pytest.mark.unit

TOKEN = "T0KEN-unit-secret"
URL = f"https://hooks.example.test/services/{TOKEN}"
OPERATOR_URL = f"http://127.0.0.1:9/operator/{TOKEN}-op"


def _spec(webhook: Any) -> StackSpec:
    return StackSpec.from_dict({"alerts": {"webhook": webhook}})


class Secrets:
    """SecretReader over a dict; `error` is raised instead when set."""

    def __init__(self, data: dict[str, dict[str, bytes]], error: Exception | None = None):
        self.data = data
        self.error = error
        self.reads = 0

    def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        if name not in self.data:
            raise NotFound(f"Secret {namespace}/{name} not found")
        return self.data[name]


# -- the spec ------------------------------------------------------------------------------


def test_without_alerts_there_is_no_stack_webhook() -> None:
    assert StackSpec.from_dict({}).alerts.webhook is None
    assert StackSpec.from_dict({"alerts": {}}).alerts.webhook is None


def test_webhook_defaults_key_cooldown_and_severity() -> None:
    hook = _spec({"secretRef": {"name": "hook"}}).alerts.webhook
    assert hook is not None
    assert (hook.secret.name, hook.secret.key) == ("hook", "url")
    assert hook.cooldown_seconds == 900 and hook.min_severity == "warning"


def test_webhook_fields_are_read() -> None:
    hook = _spec(
        {
            "secretRef": {"name": "h", "key": "slack"},
            "cooldownSeconds": 0,
            "minSeverity": "critical",
        }
    ).alerts.webhook
    assert hook == WebhookSpec(
        SecretKeyRef("h", "slack"), cooldown_seconds=0, min_severity="critical"
    )


def test_the_webhook_secret_is_no_container_secret() -> None:
    # Not passed to containers, and not a preflight requirement of the reconcile.
    assert _spec({"secretRef": {"name": "hook"}}).secret_refs() == {}


@pytest.mark.parametrize(
    ("webhook", "field", "fix"),
    [
        ({}, "spec.alerts.webhook.secretRef.name", "name the Secret"),
        ({"secretRef": {"key": "url"}}, "spec.alerts.webhook.secretRef.name", "remove"),
        ({"secretRef": "hook"}, "spec.alerts.webhook.secretRef.name", "name the Secret"),
        (
            {"secretRef": {"name": "h"}, "cooldownSeconds": -1},
            "spec.alerts.webhook.cooldownSeconds",
            "use 0",
        ),
        (
            {"secretRef": {"name": "h"}, "cooldownSeconds": 10**7},
            "spec.alerts.webhook.cooldownSeconds",
            "604800",
        ),
        (
            {"secretRef": {"name": "h"}, "cooldownSeconds": "15m"},
            "spec.alerts.webhook.cooldownSeconds",
            "whole number of seconds",
        ),
        (
            {"secretRef": {"name": "h"}, "cooldownSeconds": True},
            "spec.alerts.webhook.cooldownSeconds",
            "whole number",
        ),
        (
            {"secretRef": {"name": "h"}, "minSeverity": "info"},
            "spec.alerts.webhook.minSeverity",
            "warning, critical",
        ),
        ("https://inline.example/url", "spec.alerts.webhook", "secretRef"),
    ],
)
def test_invalid_webhooks_name_the_field_and_the_fix(webhook: Any, field: str, fix: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        _spec(webhook)
    assert field in err.value.message and fix in err.value.message


def test_alerts_must_be_an_object() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.alerts must be an object"):
        StackSpec.from_dict({"alerts": ["webhook"]})


def test_crd_defaults_and_validation_match_the_model() -> None:
    crd = yaml.safe_load((REPO_ROOT / "crds/kongmaskerstack.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    hook = spec["properties"]["alerts"]["properties"]["webhook"]
    model = _spec({"secretRef": {"name": "h"}}).alerts.webhook
    assert model is not None
    assert hook["required"] == ["secretRef"]
    assert hook["properties"]["secretRef"]["required"] == ["name"]
    assert hook["properties"]["secretRef"]["properties"]["key"]["default"] == model.secret.key
    cooldown = hook["properties"]["cooldownSeconds"]
    assert cooldown["default"] == model.cooldown_seconds and cooldown["minimum"] == 0
    with pytest.raises(InvalidSpec):
        _spec({"secretRef": {"name": "h"}, "cooldownSeconds": cooldown["maximum"] + 1})
    severity = hook["properties"]["minSeverity"]
    assert severity["default"] == model.min_severity
    assert tuple(severity["enum"]) == SEVERITIES
    assert "url" not in {k.lower() for k in hook["properties"]}  # the URL only in the Secret


# -- resolution and precedence -------------------------------------------------------------


def _resolve(
    webhook: Any, secrets: Secrets, operator_url: str = "", cooldown: float = 900
) -> alerts.Resolution:
    hook = _spec(webhook).alerts.webhook if webhook is not None else None
    return alerts.resolve(
        hook, "team-a", secrets, operator_url=operator_url, operator_cooldown=cooldown
    )


def test_no_webhook_anywhere_sends_nothing() -> None:
    secrets = Secrets({})
    res = _resolve(None, secrets)
    assert res == alerts.Resolution(None)
    assert secrets.reads == 0


def test_without_the_field_the_operator_wide_webhook_is_used() -> None:
    res = _resolve(None, Secrets({}), OPERATOR_URL, cooldown=60)
    assert res.target is not None and not res.problem
    assert res.target.url == OPERATOR_URL and res.target.cooldown == 60
    assert not res.target.per_stack and res.target.origin == alerts.OPERATOR_WIDE


def test_the_stack_webhook_wins_over_the_operator_wide_one() -> None:
    secrets = Secrets({"hook": {"url": f"  {URL}\n".encode()}})  # as `echo` leaves it
    res = _resolve(
        {"secretRef": {"name": "hook"}, "cooldownSeconds": 30, "minSeverity": "critical"},
        secrets,
        OPERATOR_URL,
    )
    assert res.target is not None and not res.problem
    assert res.target.url == URL and res.target.per_stack
    assert (res.target.cooldown, res.target.min_severity) == (30, "critical")
    assert res.target.origin == "webhook of Secret team-a/hook key url"


@pytest.mark.parametrize("operator_url", ["", OPERATOR_URL])
@pytest.mark.parametrize(
    ("data", "expect"),
    [
        ({}, "Secret team-a/hook does not exist"),
        ({"hook": {"other": URL.encode()}}, "has no key 'url'"),
        ({"hook": {"url": f"ftp://x/{TOKEN}".encode()}}, "not an http:// or https:// URL"),
        ({"hook": {"url": f"{TOKEN}".encode()}}, "not an http:// or https:// URL"),
        ({"hook": {"url": f"https://h:99999/{TOKEN}".encode()}}, "not an http"),
        ({"hook": {"url": f"https://h/a b/{TOKEN}".encode()}}, "not an http"),
    ],
)
def test_an_unusable_stack_webhook_is_a_problem_and_falls_back(
    data: dict[str, dict[str, bytes]], expect: str, operator_url: str
) -> None:
    res = _resolve({"secretRef": {"name": "hook"}}, Secrets(data), operator_url)
    assert expect in res.problem
    assert res.problem.startswith("webhook of Secret team-a/hook key url: ")
    assert TOKEN not in res.problem
    if operator_url:
        assert res.target is not None and res.target.origin == alerts.OPERATOR_WIDE
        assert "operator-wide webhook (KONGMASKER_MONITOR_WEBHOOK_URL) meanwhile" in res.problem
    else:
        assert res.target is None and "no alerts are sent" in res.problem


def test_an_unreadable_secret_is_unknown_not_a_problem() -> None:
    res = _resolve(
        {"secretRef": {"name": "hook"}}, Secrets({}, TransientError("HTTP 500")), OPERATOR_URL
    )
    assert res.unknown and not res.problem


def test_the_url_is_in_no_repr() -> None:
    res = _resolve({"secretRef": {"name": "hook"}}, Secrets({"hook": {"url": URL.encode()}}))
    assert TOKEN not in repr(res) and TOKEN not in str(res.target)


# -- the channel: one Event per problem ----------------------------------------------------


def test_one_event_per_problem_and_again_after_a_fix() -> None:
    channel = alerts.Channel()
    ok = _resolve({"secretRef": {"name": "hook"}}, Secrets({"hook": {"url": URL.encode()}}))
    missing = _resolve({"secretRef": {"name": "hook"}}, Secrets({}), OPERATOR_URL)
    no_key = _resolve({"secretRef": {"name": "hook"}}, Secrets({"hook": {}}))

    first = channel.update(missing)
    assert [(n.reason, n.warning) for n in first] == [("AlertWebhookUnavailable", True)]
    assert first[0].message == missing.problem
    assert channel.target is not None and channel.target.origin == alerts.OPERATOR_WIDE
    assert channel.update(missing) == []  # the same problem: not again
    assert len(channel.update(no_key)) == 1  # a different one: reported
    assert channel.target is None
    assert channel.update(ok) == [] and channel.target == ok.target
    assert len(channel.update(missing)) == 1  # broken again after a fix: reported again


def test_an_unknown_round_keeps_the_target() -> None:
    channel = alerts.Channel()
    ok = _resolve({"secretRef": {"name": "hook"}}, Secrets({"hook": {"url": URL.encode()}}))
    channel.update(ok)
    assert channel.update(alerts.Resolution(None, unknown=True)) == []
    assert channel.target == ok.target


# -- which Events become alerts -----------------------------------------------------------


EVENTS = [
    EventNote("ProbesFailing", "kong: 3 consecutive probes failed; restarted", warning=True),
    EventNote("RestartBudgetExhausted", "redis: 5 restarts in 600s", warning=True),
    EventNote("UnmaskedIdentifierSeen", "EC2: raw identifier at the upstream", warning=True),
    EventNote("CanaryPassed", "all 52 types masked and restored"),
]


def test_warning_events_become_alerts_keyed_by_stack_reason_and_component() -> None:
    notes = alerts.alerts_for(EVENTS, "team-a", "demo")
    assert [(n.key, n.severity, n.component) for n in notes] == [
        ("team-a/demo/ProbesFailing/kong", "warning", "kong"),
        ("team-a/demo/RestartBudgetExhausted/redis", "critical", "redis"),
        ("team-a/demo/UnmaskedIdentifierSeen/", "critical", ""),
    ]
    assert notes[0].message == EVENTS[0].message


def test_min_severity_critical_leaves_warnings_out() -> None:
    notes = alerts.alerts_for(EVENTS, "team-a", "demo", "critical")
    assert [n.reason for n in notes] == ["RestartBudgetExhausted", "UnmaskedIdentifierSeen"]


def test_the_unavailable_event_is_itself_a_warning_alert() -> None:
    missing = _resolve({"secretRef": {"name": "hook"}}, Secrets({}), OPERATOR_URL)
    notes = alerts.alerts_for(alerts.Channel().update(missing), "team-a", "demo")
    assert [(n.reason, n.severity) for n in notes] == [("AlertWebhookUnavailable", "warning")]
