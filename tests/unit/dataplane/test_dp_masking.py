"""Corpus and property tests of the pure masking engine (kongmasker_dataplane.masking)."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kongmasker_dataplane import masking
from kongmasker_dataplane.masking import EXAMPLES, TYPES, find, mask, unmask

pytestmark = pytest.mark.unit


def identifier_of(example: str) -> str:
    """The part of an EXAMPLES entry that is the identifier (the rest is context)."""
    found = find(example)
    assert len(found) == 1, (example, found)
    return found[0].value


# --- coverage of the reference list ------------------------------------------------------


def test_every_reference_type_plus_private_ip_is_covered() -> None:
    assert len(TYPES) == 52 == len(set(TYPES))  # the 51 of the original + private IPv4
    assert set(EXAMPLES) == set(TYPES)
    for type_ in TYPES:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*[A-Z0-9]", type_)


CONTEXTS = {
    "prose": "Please check {} before tonight's deploy, it looks wrong.",
    "json": '{{"resource": "{}", "region": "us-east-1", "count": 3}}',
    "log": "2024-01-15T12:30:45Z ERROR [worker-3] request failed for {} after 30s (retry 2/5)",
    "markdown": "* item: `{}`\n* next",
    "csv": "id,name\n7,{}\n",
}


@pytest.mark.parametrize("where", sorted(CONTEXTS))
@pytest.mark.parametrize("type_", TYPES)
def test_each_type_is_masked_whole_in_each_context(type_: str, where: str) -> None:
    example = EXAMPLES[type_]
    value = identifier_of(example)
    text = CONTEXTS[where].format(example)
    result = mask(text)
    assert [f.type for f in result.findings] == [type_]
    assert value not in result.text
    assert f"AWS_{type_}_001" in result.text
    assert unmask(result.text, result.mapping) == text


# Further positives: (text, type, identifier value).
POSITIVES = [
    ("legacy id i-0abc1234 stopped", "EC2", "i-0abc1234"),
    ("Found AMI ami-12345678.", "AMI", "ami-12345678"),
    ("upper-case hex vol-0A1B2C3D4E5F60718 is fine", "EBS_VOL", "vol-0A1B2C3D4E5F60718"),
    ("fs-0123456789abcdef0 mounted", "EFS", "fs-0123456789abcdef0"),
    ("route via igw-0123456789abcdef0", "IGW", "igw-0123456789abcdef0"),
    ("https://my-bucket.s3.amazonaws.com/file.txt", "S3_BUCKET", "my-bucket"),
    ("https://data.lake.s3.eu-west-1.amazonaws.com/x", "S3_BUCKET", "data.lake"),
    ("https://s3.us-west-2.amazonaws.com/assets-prod/a.png", "S3_BUCKET", "assets-prod"),
    ('{"Bucket": "invoices-2024"}', "S3_BUCKET", "invoices-2024"),
    ("bucket name: team-archive-01", "S3_BUCKET", "team-archive-01"),
    ("s3://elb-access-logs/AWSLogs/", "S3_LOGS_BUCKET", "elb-access-logs"),
    ("arn:aws:s3:::cloudtrail-log-archive", "S3_LOGS_BUCKET",
     "arn:aws:s3:::cloudtrail-log-archive"),
    ("arn:aws:s3:::my-production-bucket/*", "S3_BUCKET", "arn:aws:s3:::my-production-bucket/*"),
    ('"DBInstanceIdentifier": "orders-db-1"', "RDS", "orders-db-1"),
    ("the rds instance prod-mysql-02 is slow", "RDS", "prod-mysql-02"),
    ("redshift cluster bi-warehouse-1 paused", "REDSHIFT", "bi-warehouse-1"),
    ("temporary key ASIAY34FZKBOKMUTVV7A used", "ACCESS_KEY", "ASIAY34FZKBOKMUTVV7A"),
    ("aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "SECRET_KEY",
     "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
    ("aws_session_token=" + "AQoDYXdzEJr" + "Ab1Cd2Ef3Gh4" * 10, "SESSION_TOKEN",
     "AQoDYXdzEJr" + "Ab1Cd2Ef3Gh4" * 10),
    ("arn:aws:iam::123456789012:role/service-role/my-role", "IAM_ROLE",
     "arn:aws:iam::123456789012:role/service-role/my-role"),
    ("arn:aws:lambda:eu-west-1:123456789012:function:resize:PROD", "LAMBDA_ARN",
     "arn:aws:lambda:eu-west-1:123456789012:function:resize:PROD"),
    ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "KMS_KEY",
     "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    ('"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"', "KMS_KEY",
     "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ("arn:aws:glue:us-east-1:123456789012:job/nightly", "GLUE_JOB",
     "arn:aws:glue:us-east-1:123456789012:job/nightly"),
    ("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*", "ARN",
     "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*"),
    ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts", "SNS_TOPIC",
     "arn:aws-us-gov:sns:us-gov-west-1:123456789012:alerts"),
    ("see https://sqs.eu-central-1.amazonaws.com/123456789012/jobs.fifo now", "SQS_QUEUE",
     "https://sqs.eu-central-1.amazonaws.com/123456789012/jobs.fifo"),
    ("hosted zone /hostedzone/Z08590872JTUX1PV3IYHW", "ROUTE53_ZONE", "Z08590872JTUX1PV3IYHW"),
    ("log group /aws/ecs/containerinsights/prod/performance", "LOG_GROUP",
     "/aws/ecs/containerinsights/prod/performance"),
    ("peer fe80::1ff:fe23:4567:890a connected", "IPV6", "fe80::1ff:fe23:4567:890a"),
    ("full 2001:0db8:0000:0000:0000:ff00:0042:8329 ok", "IPV6",
     "2001:0db8:0000:0000:0000:ff00:0042:8329"),
    ("from 172.16.5.4 and", "PRIVATE_IP", "172.16.5.4"),
    ("from 192.168.0.10:8080", "PRIVATE_IP", "192.168.0.10"),
    ("cidr 10.0.0.0/16", "PRIVATE_IP", "10.0.0.0"),
    ("client 8.8.8.8 said", "PUBLIC_IP", "8.8.8.8"),
    ("clustercfg.sessions.abc123.use1.cache.amazonaws.com:6379", "ELASTICACHE",
     "clustercfg.sessions.abc123.use1.cache.amazonaws.com"),
    ('"CacheClusterId": "sessions-001"', "ELASTICACHE", "sessions-001"),
    ("Glue job: daily_ingest_v2", "GLUE_JOB", "daily_ingest_v2"),
    ('"AccountId": "123456789012"', "ACCOUNT_ID", "123456789012"),
    ("AWS account number 1234-5678-9012 owns it", "ACCOUNT_ID", "1234-5678-9012"),
    ("Owner ID: 210987654321", "ACCOUNT_ID", "210987654321"),
    ("distribution E2QWRUHAPOMQZL updated", "CLOUDFRONT", "E2QWRUHAPOMQZL"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "type_", "value"), POSITIVES)
def test_positives(text: str, type_: str, value: str) -> None:
    found = find(text)
    assert [(f.type, f.value) for f in found] == [(type_, value)]
    assert value not in mask(text).text


NEGATIVES = [
    "The meeting is at 12:30:45 and the feedback form is open.",
    "Upgrade to version 1.2.3.4, then release 2.10.0 and v3.1.4.1.",
    "python 3.11.4, node v20.11.1, pi is 3.14159, date 2024.01.15",
    "localhost 127.0.0.1, any 0.0.0.0, mask 255.255.255.0, metadata 169.254.169.254",
    "commit 0123456789abcdef0123456789abcdef01234567 merged",
    "a MAC 00:1a:2b:3c:4d:5e and std::vector<int> and Foo::Bar",
    "the bucket policy, the database is fine, db instance is up, rds cluster ready",
    "order 123456789012 shipped; call +1 555 123 4567",
    "request id 3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f completed",
    "ids too short or long: i-1234567 i-123456789 vpc-0123456789abcdef vpc-0123456789abcdef01",
    "words: ami, amigo, summit-12345678, fsck, ssg-12345678, sgx-0123abcd",
    "EXAMPLECONSTANT ENVIRONMENTVAR ZOOKEEPERCONFIGS",
    "#ff00aa colors and base64 aGVsbG8gd29ybGQ= and the word arn",
    "https://example.com/docs/guide/section-1?page=2#top",
    "glue job failed; the account is suspended; owner id unknown",
    "AKIA is a prefix only, as is AKIA123",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_negatives_pass_unchanged(text: str) -> None:
    assert find(text) == []
    assert mask(text).text == text


# --- ordering and whole-match rules (the original's defects) -----------------------------


def test_ami_is_never_cut_into_by_the_ec2_rule() -> None:
    assert mask("ami-0abcdef1234567890").text == "AWS_AMI_001"


def test_modern_17_hex_ids_leave_no_tail() -> None:
    assert mask("vpc-0123456789abcdef0.").text == "AWS_VPC_001."


def test_arn_is_masked_whole_not_the_ids_inside() -> None:
    text = "arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"
    result = mask(text)
    assert result.text == "AWS_ARN_001"
    assert [f.type for f in result.findings] == ["ARN"]


def test_ipv6_rule_does_not_break_arns_or_times() -> None:
    text = "at 10:20:30 arn:aws:iam::123456789012:user/alice and 2001:db8::8a2e:370:7334"
    assert mask(text).text == "at 10:20:30 AWS_IAM_USER_001 and AWS_IPV6_001"


def test_ecr_and_sqs_urls_are_whole_not_their_account_ids() -> None:
    text = f"{EXAMPLES['ECR_URI']}:latest and {EXAMPLES['SQS_QUEUE']}"
    assert mask(text).text == "AWS_ECR_URI_001:latest and AWS_SQS_QUEUE_001"


def test_no_partial_masks_of_run_on_ids() -> None:
    text = "i-1234567890abcdef0abc x-i-1234567890abcdef0 i-1234567890abcdef0_x"
    assert find(text) == []


def test_same_original_same_masked_id_and_numbering_per_type() -> None:
    text = "i-1234567890abcdef0 i-1234567890abcdef1 i-1234567890abcdef0 sg-0123456789abcdef0"
    assert mask(text).text == "AWS_EC2_001 AWS_EC2_002 AWS_EC2_001 AWS_SECURITY_GROUP_001"


def test_masked_ids_are_recognised_and_unknown_ones_kept() -> None:
    text = "AWS_EC2_001, AWS_S3_LOGS_BUCKET_1234 AWS_NOPE_001 AWS_EC2_0011"
    assert masking.masked_ids_in(text) == {"AWS_EC2_001", "AWS_S3_LOGS_BUCKET_1234", "AWS_EC2_0011"}
    assert unmask(text, {"AWS_EC2_001": "i-1"}) == (
        "i-1, AWS_S3_LOGS_BUCKET_1234 AWS_NOPE_001 AWS_EC2_0011"
    )


def test_masked_ids_after_json_escapes_and_glued_to_words_are_unmasked() -> None:
    raw = json.dumps({"text": "wrote:\nAWS_EC2_001\tAWS_EC2_001's (AWS_EC2_001)s"})
    assert json.loads(unmask(raw, {"AWS_EC2_001": "i-1"}))["text"] == ("wrote:\ni-1\ti-1's (i-1)s")


def test_masking_json_text_keeps_it_valid_json() -> None:
    doc = {"a": EXAMPLES["IAM_ROLE"], "b": [EXAMPLES["PUBLIC_IP"], 1.5, None]}
    masked = mask(json.dumps(doc)).text
    assert json.loads(masked) == {"a": "AWS_IAM_ROLE_001", "b": ["AWS_PUBLIC_IP_001", 1.5, None]}


# --- property: random text with embedded identifiers -------------------------------------

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.,;:!?()'-", min_size=1, max_size=12)
SEGMENT = st.one_of(WORDS, st.sampled_from(sorted(EXAMPLES)).map(lambda t: ("id", t)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=st.lists(SEGMENT, min_size=1, max_size=25), sep=st.sampled_from([" ", "\n", "\t"]))
def test_property_no_raw_identifier_survives_and_unmask_restores(
    segments: list[object], sep: str
) -> None:
    parts: list[str] = []
    embedded: list[str] = []
    for seg in segments:
        if isinstance(seg, tuple):
            parts.append(EXAMPLES[seg[1]])
            embedded.append(identifier_of(EXAMPLES[seg[1]]))
        else:
            parts.append(str(seg))
    text = sep.join(parts)
    result = mask(text)
    for value in embedded:
        assert value not in result.text
    assert unmask(result.text, result.mapping) == text


def test_the_module_docstring_example_holds() -> None:
    import doctest

    result = doctest.testmod(masking)
    assert result.attempted >= 3 and result.failed == 0


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=300),
        # Characters identifiers are made of, to stress boundaries and overlaps.
        st.text(alphabet="aimvsnpfgtu-0123456789abcdefABCDEFZEK:./ \n_sarnwk", max_size=300),
    )
)
def test_property_any_text_masks_without_error_and_round_trips(text: str) -> None:
    from hypothesis import assume

    assume(not masking.MASKED_ID_RE.search(text))
    result = mask(text)
    spans = [(f.start, f.end) for f in result.findings]
    assert spans == sorted(spans)
    bounds = [*spans, (len(text), len(text))]
    # Each finding is non-empty and ends before the next one starts (no overlaps).
    assert all(a < b <= c for (a, b), (c, _) in itertools.pairwise(bounds))
    assert unmask(result.text, result.mapping) == text
