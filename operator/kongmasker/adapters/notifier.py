"""Optional webhook notifier: POSTs alerts as JSON to a URL the stack's spec takes from a
Secret, with de-duplication by alert key and a cooldown (15 minutes by default, like the
original deployment's alerting).

    notifier = WebhookNotifier(url_from_secret)
    notifier.notify(Alert(key="default/demo/RestartBudgetExhausted/redis", severity="critical",
                          reason="RestartBudgetExhausted", message="...",
                          namespace="default", name="demo", component="redis"))

Rules:
* A firing alert is sent at most once per `cooldown` per key; repeats inside the cooldown are
  suppressed and counted (the next payload says how many were).
* A resolved alert is sent once, and only for a key whose firing was sent.
* A failed delivery (no answer, non-2xx) is not remembered as sent, so the next call retries.

The URL often embeds a token (Slack, Teams): it is never logged, put in an error message or in
the payload. Foreign (httpx) errors become a FAILED outcome here and never escape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlparse

import httpx

from kongmasker.errors import InvalidSpec

__all__ = ["DEFAULT_COOLDOWN_SECONDS", "Alert", "Delivery", "Outcome", "WebhookNotifier", "payload"]

DEFAULT_COOLDOWN_SECONDS = 900.0


@dataclass(frozen=True)
class Alert:
    """One alert about one stack. `key` identifies it for de-duplication."""

    key: str
    severity: str
    """"warning" or "critical"."""
    reason: str
    message: str
    namespace: str
    name: str
    component: str = ""
    resolved: bool = False


class Delivery(StrEnum):
    SENT = "Sent"
    SUPPRESSED = "Suppressed"
    FAILED = "Failed"


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    status_code: int = 0
    error: str = ""
    """Why delivery failed, without the URL."""


@dataclass
class _KeyState:
    last_sent: float
    active: bool
    suppressed: int = 0


class WebhookNotifier:
    """Sends alerts to one webhook URL; thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            # Not echoing the value: it may hold a token.
            raise InvalidSpec("the notifier webhook URL must be an http:// or https:// URL")
        if cooldown < 0:
            raise ValueError("cooldown must be >= 0")
        self._url = url
        self.cooldown = cooldown
        self._clock = clock
        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    def notify(self, alert: Alert) -> Outcome:
        """Send `alert` unless the de-duplication rules suppress it."""
        # The lock spans the POST so two threads cannot both send the same key.
        with self._lock:
            state = self._keys.get(alert.key)
            now = self._clock()
            if alert.resolved and (state is None or not state.active):
                return Outcome(Delivery.SUPPRESSED)
            cooling = state is not None and now - state.last_sent < self.cooldown
            if not alert.resolved and state is not None and state.active and cooling:
                state.suppressed += 1
                return Outcome(Delivery.SUPPRESSED)
            suppressed = state.suppressed if state is not None else 0
            outcome = self._post(payload(alert, suppressed))
            if outcome.delivery is not Delivery.SENT:
                return outcome
            if alert.resolved and state is not None:
                # Keep last_sent: a re-fire after the resolution is news and is sent at once.
                state.active, state.suppressed = False, 0
            else:
                self._keys[alert.key] = _KeyState(last_sent=now, active=True)
            return outcome

    def _post(self, body: dict[str, Any]) -> Outcome:
        try:
            resp = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            return Outcome(Delivery.FAILED, error=f"webhook unreachable: {type(exc).__name__}")
        if not 200 <= resp.status_code < 300:
            return Outcome(
                Delivery.FAILED, resp.status_code, f"webhook answered {resp.status_code}"
            )
        return Outcome(Delivery.SENT, resp.status_code)

    def close(self) -> None:
        self._client.close()


def payload(alert: Alert, suppressed: int = 0) -> dict[str, Any]:
    """The JSON body: structured fields plus a `text` line that chat webhooks display."""
    status = "resolved" if alert.resolved else "firing"
    where = f"{alert.namespace}/{alert.name}" + (f" {alert.component}" if alert.component else "")
    return {
        "source": "kongmasker-operator",
        "key": alert.key,
        "status": status,
        "severity": alert.severity,
        "reason": alert.reason,
        "message": alert.message,
        "stack": {"namespace": alert.namespace, "name": alert.name},
        "component": alert.component,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "suppressedSinceLast": suppressed,
        "text": f"[{alert.severity.upper()} {status}] {where}: {alert.reason}: {alert.message}",
    }
