"""Where a stack's alerts go and which of the watch's Events become alerts (issue 5).

Precedence, per stack:

1. `spec.alerts.webhook`: the URL read from the named Secret key (default key `url`) of the
   stack's namespace, with the spec's cooldown and minimum severity.
2. Otherwise the operator-wide webhook (`KONGMASKER_MONITOR_WEBHOOK_URL`), if set.
3. If the stack names a webhook that cannot be used (Secret or key missing, not an http(s) URL),
   its alerts go to the operator-wide webhook meanwhile (if set), and `problem` says why, so
   that the watch posts one `AlertWebhookUnavailable` Warning. The watch carries on: an alert
   channel is not a reason to fail a reconcile or a tick.

The URL usually embeds a token. It is never part of a message, a repr or an error here: a
target is described as "webhook of Secret <ns>/<name> key <key>".

    res = resolve(spec.alerts.webhook, "default", secrets, operator_url="", operator_cooldown=900)
    for note in alerts_for(events, "default", "demo", res.target.min_severity): ...

No I/O but the Secret read through the `SecretReader` protocol; nothing is sent here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from kongmasker.adapters.kube import SecretReader
from kongmasker.api.spec import SEVERITIES, WebhookSpec
from kongmasker.api.vocabulary import Component, Reason
from kongmasker.core.status import EventNote
from kongmasker.errors import NotFound, TransientError

__all__ = [
    "OPERATOR_WIDE",
    "UNAVAILABLE_REASON",
    "AlertNote",
    "Channel",
    "Resolution",
    "Target",
    "alerts_for",
    "describe",
    "resolve",
    "severity",
]

OPERATOR_WIDE = "the operator-wide webhook (KONGMASKER_MONITOR_WEBHOOK_URL)"
UNAVAILABLE_REASON = str(Reason.ALERT_WEBHOOK_UNAVAILABLE)

CRITICAL_REASONS = frozenset({str(Reason.RESTART_BUDGET_EXHAUSTED), str(Reason.IDENTIFIER_LEAKED)})
"""Reasons sent as critical (as in manifests/monitoring: budget exhausted, a raw identifier
at the upstream); every other Warning is a warning."""


@dataclass(frozen=True)
class Target:
    """One webhook to send a stack's alerts to."""

    url: str = field(repr=False)
    cooldown: float
    min_severity: str
    origin: str
    """What it is, without the URL: "webhook of Secret ns/name key url" or OPERATOR_WIDE."""

    @property
    def per_stack(self) -> bool:
        return self.origin != OPERATOR_WIDE


@dataclass(frozen=True)
class Resolution:
    target: Target | None
    """Where alerts go now; None: nowhere."""

    problem: str = ""
    """Why the stack's own webhook cannot be used (no URL in it), else empty."""

    unknown: bool = False
    """The Secret could not be read this time (API error): keep using what was used before."""


@dataclass(frozen=True)
class AlertNote:
    """The fields of one alert (adapters/notifier.Alert without the stack)."""

    key: str
    severity: str
    reason: str
    message: str
    component: str = ""


def describe(namespace: str, webhook: WebhookSpec) -> str:
    return f"webhook of Secret {namespace}/{webhook.secret.name} key {webhook.secret.key}"


def valid_url(url: str) -> bool:
    """An http(s) URL with a host, a valid port if any, and no whitespace or control
    characters (what the notifier's HTTP client accepts)."""
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        return False
    try:
        parsed = urlparse(url)
        _ = parsed.port  # raises ValueError when out of range or not a number
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname)


def resolve(
    webhook: WebhookSpec | None,
    namespace: str,
    secrets: SecretReader,
    *,
    operator_url: str = "",
    operator_cooldown: float = 900.0,
) -> Resolution:
    """The stack's alert target by the precedence above."""
    fallback = (
        Target(operator_url, operator_cooldown, SEVERITIES[0], OPERATOR_WIDE)
        if operator_url
        else None
    )
    if webhook is None:
        return Resolution(fallback)
    origin = describe(namespace, webhook)
    secret = webhook.secret
    try:
        data = secrets.read_secret(namespace, secret.name)
    except NotFound:
        return Resolution(
            fallback,
            _problem(
                f"{origin}: Secret {namespace}/{secret.name} does not exist; create it with the "
                f"webhook URL under key {secret.key!r}",
                fallback,
            ),
        )
    except TransientError:
        return Resolution(None, unknown=True)
    raw = data.get(secret.key)
    if raw is None:
        return Resolution(
            fallback,
            _problem(
                f"{origin}: Secret {namespace}/{secret.name} has no key {secret.key!r}; add the "
                "webhook URL under it or fix spec.alerts.webhook.secretRef.key",
                fallback,
            ),
        )
    url = raw.decode(errors="replace").strip()
    if not valid_url(url):
        return Resolution(
            fallback,
            _problem(
                f"{origin}: the value is not an http:// or https:// URL with a host; put the "
                "webhook URL (only the URL) in the Secret",
                fallback,
            ),
        )
    return Resolution(Target(url, float(webhook.cooldown_seconds), webhook.min_severity, origin))


def _problem(message: str, fallback: Target | None) -> str:
    then = f"alerts go to {OPERATOR_WIDE} meanwhile" if fallback else "no alerts are sent"
    return f"{message} ({then})"


class Channel:
    """One stack's alert channel between ticks: the target in use and the problem last
    reported, so that an unusable webhook gives one Event, not one per tick."""

    def __init__(self) -> None:
        self.target: Target | None = None
        self.problem = ""

    def update(self, res: Resolution) -> list[EventNote]:
        """Take this tick's resolution; returns the Event to post (once per new problem)."""
        if res.unknown:
            return []  # the Secret could not be read: keep the previous target
        self.target = res.target
        notes = []
        if res.problem and res.problem != self.problem:
            notes.append(EventNote(UNAVAILABLE_REASON, res.problem, warning=True))
        self.problem = res.problem
        return notes


def severity(reason: str) -> str:
    return "critical" if reason in CRITICAL_REASONS else "warning"


def alerts_for(
    events: Iterable[EventNote], namespace: str, name: str, min_severity: str = "warning"
) -> list[AlertNote]:
    """The Warning Events of one tick as alerts, keyed (stack, reason, component) for the
    notifier's de-duplication; below `min_severity` left out."""
    floor = SEVERITIES.index(min_severity) if min_severity in SEVERITIES else 0
    components = {str(c) for c in Component}
    out = []
    for e in events:
        if not e.warning:
            continue
        level = severity(e.reason)
        if SEVERITIES.index(level) < floor:
            continue
        head = e.message.split(":", 1)[0]
        component = head if head in components else ""
        key = f"{namespace}/{name}/{e.reason}/{component}"
        out.append(AlertNote(key, level, e.reason, e.message, component))
    return out
