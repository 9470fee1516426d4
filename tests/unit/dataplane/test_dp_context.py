"""Context that crosses boundaries: Korean particles and punctuation after every type, JSON
keys as labels, account ids learned from ARNs elsewhere in the same body, the prefilter."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kongmasker_dataplane import bodies
from kongmasker_dataplane.masking import EXAMPLES, TYPES, find, mask, unmask

pytestmark = pytest.mark.unit

PARTICLES = ["에서", "으로", "를", "의", "가", "는", "과", "에", "이다.", "입니다!"]
PUNCTUATION = [".", ",", ";", ":", "!", "?", ")", "'", '"', "]", "…"]


def value_of(example: str) -> str:
    [finding] = find(example)
    return finding.value


@pytest.mark.parametrize("type_", TYPES)
def test_every_type_followed_by_korean_particles_and_punctuation(type_: str) -> None:
    example, value = EXAMPLES[type_], value_of(EXAMPLES[type_])
    for tail in PARTICLES + PUNCTUATION:
        text = f"확인: {example}{tail} 다음"
        result = mask(text)
        assert [f.value for f in result.findings] == [value], (type_, tail)
        assert unmask(result.text, result.mapping) == text


@settings(max_examples=200, deadline=None)
@given(
    type_=st.sampled_from(TYPES),
    before=st.text(alphabet="가나다라 마바사,.(", max_size=6),
    after=st.text(alphabet="에서으로를의가는 .,)!", max_size=6),
)
def test_property_hangul_around_an_id_never_blocks_it(type_: str, before: str, after: str) -> None:
    example = EXAMPLES[type_]
    text = f"{before} {example}{after}"
    assert value_of(example) not in mask(text).text


def test_json_keys_label_their_values() -> None:
    doc = {
        "BucketName": "finance-exports-2025",
        "awsAccountId": "864209753186",
        "DistributionId": "EDFDVBDEXAMPLE",
        "principal": {"type": "account", "id": "135792468013"},
        "orderNumber": "202503140001",
        "title": "EDFDVBDEXAMPLE",
    }
    parsed = bodies.parse_body(json.dumps(doc).encode(), "application/json")
    masked = {value for value in parsed.findings}
    assert masked == {"finance-exports-2025", "864209753186", "EDFDVBDEXAMPLE", "135792468013"}
    # "EDFDVBDEXAMPLE" is masked under "title" too: one string, one reading per body.
    out = json.loads(bodies.rebuild(parsed, {o: "X" for _t, o in parsed.items}))
    assert out["orderNumber"] == "202503140001" and out["title"] == "X"


def test_an_account_id_shown_by_an_arn_is_masked_everywhere_in_the_body() -> None:
    doc = {
        "a": "arn:aws:iam::246813579024:role/Admin",
        "b": "billing for 246813579024 rose",
        "c": "unrelated 246813579025",
    }
    parsed = bodies.parse_body(json.dumps(doc).encode(), "application/json")
    assert [f.value for f in parsed.findings["billing for 246813579024 rose"]] == ["246813579024"]
    assert "unrelated 246813579025" not in parsed.findings
    text = "see 2468-1357-9024 and arn:aws:sns:us-east-1:246813579024:ops"
    assert [f.type for f in find(text)] == ["ACCOUNT_ID", "SNS_TOPIC"]


def test_a_form_value_is_labelled_by_its_name() -> None:
    parsed = bodies.parse_query("bucket=team-archive-07&note=team-archive-08")
    assert set(parsed.findings) == {"team-archive-07"}


def test_text_without_candidates_triggers_no_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from kongmasker_dataplane import masking

    scanned: list[str] = []
    original = masking._scan

    def spy(rule, text, start, end):  # type: ignore[no-untyped-def]
        scanned.append(rule.type)
        return original(rule, text, start, end)

    monkeypatch.setattr(masking, "_scan", spy)
    prose = "The deploy finished at 12:30:45 with version 1.2.3; latency is back to normal. " * 12
    assert find(prose) == []
    assert scanned == []  # the prefilter ruled out every rule


@pytest.mark.parametrize(
    "shown_by",
    [
        "docker pull 987654321098.dkr.ecr.us-east-1.amazonaws.com/app:1",
        "queue https://sqs.us-east-1.amazonaws.com/987654321098/jobs",
        "role arn:aws:iam::987654321098:role/x",
    ],
)
def test_an_account_id_learned_mid_text_from_ecr_sqs_or_arn(shown_by: str) -> None:
    text = f"{shown_by} -- the bill for 987654321098 and 9876-5432-1098 doubled"
    result = mask(text)
    assert "987654321098" not in result.text and "9876-5432-1098" not in result.text
    assert unmask(result.text, result.mapping) == text
