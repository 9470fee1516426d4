"""The kubectl plugin's pure parts: rates and quantiles of the monitor, redaction of the
report, --since parsing, the backups summary of status, and the Hibernated phase."""

from __future__ import annotations

import json
import math

import pytest

from kongmasker.api.vocabulary import Phase
from kongmasker.cli import main as cli_main
from kongmasker.cli.context import CliError, ago, parse_time, redact
from kongmasker.cli.logs import since_epoch
from kongmasker.cli.monitor import Sample, line, parse, quantile, view
from kongmasker.cli.report import Bundle, _inspect
from kongmasker.cli.status import render_text, stack_backups
from kongmasker.core import status as st

pytestmark = pytest.mark.unit

GW = "kongmasker_gateway_"


def _gateway(ok: int, errors: int, masked: int, buckets: dict[str, int]) -> str:
    rows = [
        f'{GW}requests_total{{route="v1",code="200"}} {ok}',
        f'{GW}requests_total{{route="v1",code="503"}} {errors}',
        f'{GW}masked_identifiers_total{{type="ec2"}} {masked}',
        f"{GW}masking_errors_total 0",
        f"{GW}fail_secure_refusals_total {errors}",
    ]
    rows += [f'{GW}upstream_latency_seconds_bucket{{le="{le}"}} {n}' for le, n in buckets.items()]
    return "\n".join(rows) + "\n"


def _sample(at: float, text: str) -> Sample:
    comps = {"redis": "up", "kong": "up", "nginx": "down", "backend": "absent"}
    return Sample(at, "Ready", comps, parse(text), {}, {})


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.1)
    assert quantile(buckets, 0.75) == pytest.approx(0.15)
    assert quantile([], 0.5) is None
    assert quantile([(0.1, 0.0), (math.inf, 0.0)], 0.5) is None


def test_view_rates_errors_and_latency_over_the_interval() -> None:
    prev = _sample(100.0, _gateway(10, 0, 20, {"0.01": 10, "0.1": 10, "+Inf": 10}))
    cur = _sample(102.0, _gateway(28, 2, 60, {"0.01": 10, "0.1": 30, "+Inf": 30}))
    v = view(prev, cur)
    assert v.requests_per_s == pytest.approx(10.0)  # 20 requests in 2 s
    assert v.error_ratio == pytest.approx(0.1)  # 2 of them 5xx
    assert v.masked_per_s == pytest.approx(20.0)
    assert v.masking_failures == 2
    # the 20 new requests all fell in (0.01, 0.1]
    assert 0.01 < (v.latency["p50"] or 0) <= 0.1
    text = line(v)
    assert "rps=10.00" in text and "errors=10.0%" in text and "nginx=down" in text
    assert text.startswith("1970-01-01T00:01:42Z ")


def test_view_after_a_gateway_restart_shows_no_negative_rate() -> None:
    prev = _sample(100.0, _gateway(50, 0, 0, {"+Inf": 50}))
    cur = _sample(101.0, _gateway(3, 0, 0, {"+Inf": 3}))
    assert view(prev, cur).requests_per_s is None


def test_first_view_has_totals_but_no_rates() -> None:
    v = view(None, _sample(1.0, _gateway(5, 0, 7, {"+Inf": 5})))
    assert v.requests_total == 5 and v.masked_total == 7 and v.requests_per_s is None
    assert "rps=-" in line(v)


def test_report_redacts_secret_values_and_secret_env() -> None:
    bundle = Bundle(["s3cr3t-value", "pw-1234"])
    bundle.add("a.txt", "password is s3cr3t-value and pw-1234")
    assert bundle.parts["a.txt"] == b"password is <redacted> and <redacted>"
    raw = {"Config": {"Env": ["REDIS_PASSWORD=x", "KONG_API_KEY=y", "PATH=/bin", "BARE"]}}
    env = json.loads(_inspect(raw))["Config"]["Env"]
    assert env == ["REDIS_PASSWORD=<redacted>", "KONG_API_KEY=<redacted>", "PATH=/bin", "BARE"]
    assert redact("nothing here", ["zzzz"]) == "nothing here"


def test_since_accepts_durations_and_rfc3339_and_names_the_fix() -> None:
    assert since_epoch(None) is None
    assert since_epoch("2026-12-01T10:00:00Z") == parse_time("2026-12-01T10:00:00Z").timestamp()  # type: ignore[union-attr]
    assert since_epoch("10m") is not None
    with pytest.raises(CliError, match="use a duration"):
        since_epoch("yesterday")


def test_parse_time_reads_docker_nanoseconds() -> None:
    t = parse_time("2026-12-01T10:00:00.123456789Z")
    assert t is not None and t.microsecond == 123456
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert ago("") == "-"


def _backup(name: str, phase: str, done: str, kind: str = "Backup", **spec: object) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"type": kind, "stackRef": {"name": "demo"}, **spec},
        "status": {
            "phase": phase,
            "completionTime": done,
            "nextScheduleTime": "2026-12-02T03:00:00Z",
        },
    }


def test_backups_summary_picks_newest_of_each_kind() -> None:
    items = [
        _backup("b1", "Validated", "2026-12-01T01:00:00Z"),
        _backup("b2", "Completed", "2026-12-01T02:00:00Z"),
        _backup("b3", "Failed", "2026-12-01T03:00:00Z"),
        _backup(
            "nightly",
            "Scheduled",
            "",
            "Schedule",
            schedule={"cron": "0 3 * * *", "retention": {"keepLast": 7}},
        ),
    ]
    s = stack_backups(items)
    assert s["lastCompleted"]["name"] == "b2"
    assert s["lastValidated"]["name"] == "b1"
    assert s["schedules"][0]["retention"] == {"keepLast": 7}
    assert s["schedules"][0]["nextScheduleTime"] == "2026-12-02T03:00:00Z"
    assert s["count"] == 3


def test_status_screen_renders_an_empty_status() -> None:
    s = {
        "name": "x", "namespace": "ns", "ready": False, "phase": "Pending", "generation": 1,
        "observedGeneration": None, "conditions": [], "components": {}, "canary": {},
        "endpoints": {}, "backups": {"lastCompleted": None, "lastValidated": None,
                                     "schedules": [], "count": 0},
        "warnings": [],
    }  # fmt: skip
    text = render_text(s)
    assert "not Ready" in text and "no run yet" in text and "schedule        none" in text


def test_hibernated_verdicts_make_the_hibernated_phase() -> None:
    verdicts = st.hibernated_verdicts("stopped")
    assert st.phase_for(verdicts, {}) == Phase.HIBERNATED
    ready = next(v for v in verdicts if v.type == "Ready")
    assert ready.ok is False and ready.reason == "Hibernated"


def test_hibernate_needs_a_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.parser().parse_args(["hibernate", "sleep", "demo"])
    assert exc.value.code == 2
    assert "invalid choice: 'sleep'" in capsys.readouterr().err
