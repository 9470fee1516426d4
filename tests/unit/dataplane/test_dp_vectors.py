"""The shared masking vectors (operator/kongmasker/api/masking_vectors.json) against the engine:
exact round trips, no leak, no partial mask, no false positive. The gateway's integration
tests send the same cases through HTTP (tests/integration/dataplane/test_dp_vectors_http.py).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kongmasker.api import vectors
from kongmasker_dataplane import bodies
from kongmasker_dataplane.masking import TYPES, find, mask, unmask

pytestmark = pytest.mark.unit

POSITIVES = vectors.positives()
NEGATIVES = vectors.negatives()


def engine_type(file_type: str) -> str:
    """The file's vocabulary (`s3-logs-bucket`) -> the engine's type (`S3_LOGS_BUCKET`)."""
    return file_type.upper().replace("-", "_")


def test_the_file_is_large_and_covers_every_type_with_one_canary_each() -> None:
    assert len(POSITIVES) + len(NEGATIVES) >= 500
    assert len(NEGATIVES) >= 50
    types = {engine_type(c.type) for c in POSITIVES}
    assert types == set(TYPES)
    canaries = Counter(c.type for c in vectors.canary_cases())
    assert set(canaries) == {c.type for c in POSITIVES} and set(canaries.values()) == {1}
    for c in POSITIVES:
        assert c.type == c.type.lower() and "_" not in c.type, c.id  # the file's own vocabulary
    tags = {t for c in POSITIVES for t in c.tags}
    assert {"english", "korean", "json", "log", "shell", "issue-14"} <= tags


@pytest.mark.parametrize("case", POSITIVES, ids=lambda c: c.id)
def test_positive_is_masked_exactly_and_round_trips(case: vectors.PositiveCase) -> None:
    result = mask(case.text)
    found = sorted({f.value for f in result.findings})
    # Exactly the listed identifiers: nothing more (false positive), nothing less (leak), and
    # each one whole (a partial mask would show as a shorter value here).
    assert found == sorted(set(case.identifiers)), case.text
    for ident in case.identifiers:
        assert ident not in result.text
    if len(set(case.identifiers)) == 1:
        assert {f.type for f in result.findings} == {engine_type(case.type)}
    assert unmask(result.text, result.mapping) == case.text


@pytest.mark.parametrize("case", POSITIVES, ids=lambda c: c.id)
def test_positive_inside_a_json_request_body_is_masked(case: vectors.PositiveCase) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": case.text}]}).encode()
    parsed = bodies.parse_body(body, "application/json")
    out = bodies.rebuild(parsed, {o: f"AWS_X_{i:03d}" for i, (_t, o) in enumerate(parsed.items)})
    content = json.loads(out)["messages"][0]["content"]
    for ident in case.identifiers:
        assert ident not in content


@pytest.mark.parametrize("case", NEGATIVES, ids=lambda c: c.id)
def test_negative_is_left_alone(case: vectors.NegativeCase) -> None:
    assert find(case.text) == [], case.why
    assert mask(case.text).text == case.text
