"""The end-to-end masking canary: proves, through the real path Nginx -> Kong -> upstream, that
the upstream receives only masked identifiers and that the caller gets every original back.
It judges any aws-masker plugin (the local gateway's or the original's in a real Kong) by what
it does, never by how it names masked ids: its cases are the operator's own test vectors
(api/masking_vectors.json, cases marked canary, one per type), keyed by the vectors' types.

One run:

1. Refuse to send anything unless the upstream is the operator-controlled mock: it must answer
   `GET /__requests` with a JSON list (a paid AI API has no such path). Otherwise the verdict is
   Unknown with reason UpstreamNotVerifiable.
2. POST one Messages API request to the stack's Nginx endpoint carrying the text of every
   canary case, one per line, each line tagged with a per-run nonce so the canary finds its own
   request in the mock's history even while other traffic flows.
3. Read the mock's history: no raw identifier of any case may appear anywhere in the request
   it received (else: UnmaskedIdentifierSeen naming the case types, a security incident).
4. The mock echoes the text it received; the reply the canary got must contain every original
   line verbatim (else: OriginalsNotRestored).
5. Optionally (`per_type_timing`), one request per type, reading the gateway's
   `kongmasker_gateway_masking_seconds` histogram before and after each: the masking time per
   identifier type. A reading that another request disturbed (count grew by more than one) is
   dropped rather than misattributed.

`run` does the I/O (httpx, one client per run); `verdict` and `record` turn a result into the
MaskingVerified condition and the metrics.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from kongmasker import metrics
from kongmasker.api import vectors
from kongmasker.api.spec import StackSpec
from kongmasker.api.vocabulary import ConditionType, Reason
from kongmasker.core.status import Verdict

__all__ = [
    "CanaryResult",
    "CanaryTarget",
    "Probe",
    "TypeResult",
    "build_probe",
    "record",
    "run",
    "verdict",
]

GATEWAY_MASKING_METRIC = "kongmasker_gateway_masking_seconds"


@dataclass(frozen=True)
class CanaryTarget:
    """Where the canary sends (Nginx) and what it reads (the mock, the gateway's metrics)."""

    proxy_url: str
    route_path: str
    upstream_url: str
    gateway_metrics_url: str | None = None

    @classmethod
    def from_spec(cls, spec: StackSpec) -> CanaryTarget:
        """The stack's own endpoints, as the operator reaches them."""
        host = spec.docker_host.address
        return cls(
            proxy_url=f"http://{host}:{spec.nginx.port}",
            route_path=spec.kong.route_paths[0],
            upstream_url=spec.upstream.url,
            gateway_metrics_url=f"http://{host}:{spec.kong.status_port}/metrics",
        )

    @property
    def messages_url(self) -> str:
        return f"{self.proxy_url}{self.route_path.rstrip('/')}/messages"


@dataclass(frozen=True)
class Probe:
    """The canary's request text: one line per type, and what each line must become."""

    nonce: str
    lines: dict[str, str]
    """type -> the line carrying that type's example."""
    raw: dict[str, tuple[str, ...]]
    """type -> the identifier values in its line that must never reach the upstream."""

    @property
    def text(self) -> str:
        # Blank lines between entries keep one line's context words away from the next.
        return "\n\n".join(self.lines.values())


# Letters that spell no context word of the engine (kms, key, rds, glue, job, account, ...),
# so neither the nonce nor a line tag can change how the identifier next to it is read.
_NEUTRAL = "qxzjvw"


def build_probe(
    cases: Iterable[vectors.PositiveCase] | None = None, nonce: str | None = None
) -> Probe:
    """A probe over `cases` (default: the vectors' canary cases, one per type).

    Each line is `<nonce><tag>: <case text>`; nonce and tag are letters from `_NEUTRAL` only,
    so that no detection rule can take them for an identifier or for context.
    """
    chosen = tuple(vectors.canary_cases() if cases is None else cases)
    nonce = nonce or "km" + "".join(secrets.choice(_NEUTRAL) for _ in range(14))
    lines: dict[str, str] = {}
    raw: dict[str, tuple[str, ...]] = {}
    for case in chosen:
        if case.type in lines:
            continue  # one line per type: the verdict names types
        lines[case.type] = f"{nonce}{_tag(len(lines))}: {case.text}"
        raw[case.type] = case.identifiers
    return Probe(nonce, lines, raw)


def _tag(index: int) -> str:
    """`index` written in base 6 with the neutral letters, at least two of them."""
    digits = ""
    while True:
        index, rest = divmod(index, len(_NEUTRAL))
        digits = _NEUTRAL[rest] + digits
        if index == 0:
            break
    return digits.rjust(2, _NEUTRAL[0])


@dataclass(frozen=True)
class TypeResult:
    """What the canary saw for one identifier type."""

    type: str
    leaked: bool = False
    """A raw identifier of this type reached the upstream."""
    restored: bool = False
    """The caller's reply contained the original line verbatim."""
    masking_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.leaked and self.restored

    @property
    def failure(self) -> Reason | None:
        if self.leaked:
            return Reason.IDENTIFIER_LEAKED
        if not self.restored:
            return Reason.ORIGINALS_NOT_RESTORED
        return None


@dataclass(frozen=True)
class CanaryResult:
    """The outcome of one canary run."""

    reason: Reason
    message: str
    sent: bool = False
    status_code: int = 0
    latency_seconds: float | None = None
    types: dict[str, TypeResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        """True (verified), False (failed) or None (could not verify: nothing was sent)."""
        if self.reason is Reason.UPSTREAM_NOT_VERIFIABLE:
            return None
        return self.reason is Reason.CANARY_PASSED

    @property
    def accuracy(self) -> float:
        """Fraction of types kept from the upstream and restored (0 when nothing was checked)."""
        return sum(t.ok for t in self.types.values()) / len(self.types) if self.types else 0.0

    def failed_types(self, reason: Reason) -> list[str]:
        return [t.type for t in self.types.values() if t.failure is reason]


def run(
    target: CanaryTarget,
    *,
    probe: Probe | None = None,
    per_type_timing: bool = True,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> CanaryResult:
    """One canary run against `target`; never raises for what the stack does wrong."""
    probe = probe or build_probe()
    with httpx.Client(timeout=timeout, transport=transport) as client:
        if not _upstream_is_mock(client, target):
            return CanaryResult(
                Reason.UPSTREAM_NOT_VERIFIABLE,
                "the upstream does not expose GET /__requests (not the mock upstream): "
                "the canary sends nothing to it",
            )
        started = clock()
        try:
            resp = _send(client, target, probe.text, probe.nonce)
        except httpx.HTTPError as exc:
            return CanaryResult(
                Reason.CANARY_REQUEST_FAILED,
                f"no answer from {target.messages_url}: {type(exc).__name__}",
                sent=True,
            )
        latency = clock() - started
        failed = _refused(resp, latency)
        if failed is not None:
            return failed
        received = _received_text(client, target, probe.nonce)
        if received is None:
            return CanaryResult(
                Reason.CANARY_REQUEST_FAILED,
                "the upstream has no record of the canary request",
                True,
                resp.status_code,
                latency,
            )
        timings = _time_per_type(client, target, probe) if per_type_timing else {}
    types = _check(probe, received, _reply_text(resp), timings)
    return _conclude(types, resp.status_code, latency)


def _upstream_is_mock(client: httpx.Client, target: CanaryTarget) -> bool:
    try:
        resp = client.get(f"{target.upstream_url.rstrip('/')}/__requests")
    except httpx.HTTPError:
        return False
    try:
        return resp.status_code == 200 and isinstance(resp.json(), list)
    except ValueError:
        return False


def _send(client: httpx.Client, target: CanaryTarget, text: str, nonce: str) -> httpx.Response:
    body = {
        "model": "kongmasker-canary",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": text}],
    }
    headers = {"anthropic-version": "2023-06-01", "x-kongmasker-canary": nonce}
    return client.post(target.messages_url, json=body, headers=headers)


def _refused(resp: httpx.Response, latency: float) -> CanaryResult | None:
    if resp.status_code == 200:
        return None
    if resp.status_code == 503 and _from_gateway(resp):
        return CanaryResult(
            Reason.FAIL_SECURE_REFUSAL,
            "the gateway refused the canary with 503 (fail-secure: its mapping store is "
            "unreachable)",
            True,
            resp.status_code,
            latency,
        )
    return CanaryResult(
        Reason.CANARY_REQUEST_FAILED,
        f"the canary request got HTTP {resp.status_code}",
        True,
        resp.status_code,
        latency,
    )


def _from_gateway(resp: httpx.Response) -> bool:
    """A 503 that the masking gateway wrote (JSON error body), not Nginx's own page."""
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict)


def _received_text(client: httpx.Client, target: CanaryTarget, nonce: str) -> str | None:
    """The JSON text of the request body the upstream recorded for this nonce."""
    history = client.get(f"{target.upstream_url.rstrip('/')}/__requests").json()
    for body in reversed(history):
        text = json.dumps(body, ensure_ascii=False)
        if nonce in text:
            return _content_text(body) if isinstance(body, dict) else text
    return None


def _content_text(body: dict[str, Any]) -> str:
    """The user message text of a Messages API body, plus everything else serialised (so a
    raw identifier anywhere in the body is still seen)."""
    parts: list[str] = []
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            parts.append(content)
    parts.append(json.dumps(body, ensure_ascii=False))
    return "\n\n".join(parts)


def _reply_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text
    blocks = body.get("content") if isinstance(body, dict) else None
    if isinstance(blocks, list):
        return "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict))
    return resp.text


def _check(
    probe: Probe, received: str, reply: str, timings: Mapping[str, float]
) -> dict[str, TypeResult]:
    return {
        type_: TypeResult(
            type=type_,
            leaked=any(value in received for value in probe.raw[type_]),
            restored=line in reply,
            masking_seconds=timings.get(type_),
        )
        for type_, line in probe.lines.items()
    }


def _conclude(types: dict[str, TypeResult], status: int, latency: float) -> CanaryResult:
    result = CanaryResult(Reason.CANARY_PASSED, "", True, status, latency, types)
    for reason, what in (
        (Reason.IDENTIFIER_LEAKED, "reached the upstream unmasked"),
        (Reason.ORIGINALS_NOT_RESTORED, "were not restored in the reply"),
    ):
        failed = result.failed_types(reason)
        if failed:
            shown = ", ".join(failed[:8]) + (
                f" and {len(failed) - 8} more" if len(failed) > 8 else ""
            )
            message = f"{len(failed)}/{len(types)} identifier types {what}: {shown}"
            return CanaryResult(reason, message, True, status, latency, types)
    message = (
        f"all {len(types)} identifier types masked upstream and restored in {latency * 1000:.0f} ms"
    )
    return CanaryResult(Reason.CANARY_PASSED, message, True, status, latency, types)


def _time_per_type(client: httpx.Client, target: CanaryTarget, probe: Probe) -> dict[str, float]:
    """Masking time per type from the gateway's own histogram (see the module docstring)."""
    if not target.gateway_metrics_url:
        return {}
    before = _masking_histogram(client, target.gateway_metrics_url)
    if before is None:
        return {}
    out: dict[str, float] = {}
    for type_, line in probe.lines.items():
        try:
            resp = _send(client, target, line, probe.nonce)
        except httpx.HTTPError:
            break
        after = _masking_histogram(client, target.gateway_metrics_url)
        if after is None:
            break
        if resp.status_code == 200 and after[1] - before[1] == 1:
            out[type_] = max(after[0] - before[0], 0.0)
        before = after
    return out


def _masking_histogram(client: httpx.Client, url: str) -> tuple[float, float] | None:
    """(sum, count) of the gateway's masking-time histogram, or None if not exposed."""
    try:
        text = client.get(url).text
    except httpx.HTTPError:
        return None
    found: dict[str, float] = {}
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            name = GATEWAY_MASKING_METRIC + suffix
            if line.startswith(name + " ") or line.startswith(name + "{"):
                found[suffix] = found.get(suffix, 0.0) + float(line.rsplit(" ", 1)[1])
    if "_sum" not in found or "_count" not in found:
        return None
    return found["_sum"], found["_count"]


def verdict(result: CanaryResult) -> Verdict:
    """The MaskingVerified condition for `result`."""
    return Verdict(ConditionType.MASKING_VERIFIED, result.ok, str(result.reason), result.message)


def record(result: CanaryResult, namespace: str, name: str) -> None:
    """Publish `result` in the issue-5 metrics of the stack."""
    stack = (namespace, name)
    if result.ok is None:
        return  # nothing was sent: no measurement, keep the last known values
    metrics.CANARY_REQUESTS.labels(*stack).inc()
    if result.latency_seconds is not None:
        metrics.CANARY_REQUEST_SECONDS.labels(*stack).observe(result.latency_seconds)
    if not result.ok:
        metrics.CANARY_REQUEST_ERRORS.labels(*stack, str(result.reason)).inc()
    metrics.MASKING_VERIFIED.labels(*stack).set(1 if result.ok else 0)
    if result.reason is Reason.IDENTIFIER_LEAKED:
        # Only the canary can see this one. Fail-secure refusals (the canary's included) are
        # counted by the gateway and mirrored by core/mirror.py, so not counted twice here.
        metrics.SECURITY_INCIDENTS.labels(*stack, str(result.reason)).inc()
    if not result.types:
        return
    metrics.MASKING_SUCCESS_RATIO.labels(*stack).set(result.accuracy)
    for t in result.types.values():
        metrics.MASKING_CHECKS.labels(*stack, t.type).inc()
        metrics.MASKING_ACCURACY_RATIO.labels(*stack, t.type).set(1 if t.ok else 0)
        if t.failure is not None:
            metrics.MASKING_CHECK_FAILURES.labels(*stack, t.type, str(t.failure)).inc()
        if t.masking_seconds is not None:
            metrics.MASKING_PROCESSING_SECONDS.labels(*stack, t.type).set(t.masking_seconds)
