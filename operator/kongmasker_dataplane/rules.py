"""The detection rules of the masking engine: one per identifier shape, with the context and
speed hints the engine uses (see `masking` for how candidates are chosen). Pure data and small
check functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EXAMPLES", "RULES", "TYPES", "Rule"]

Check = Callable[[str, "re.Match[str]"], bool]
Classify = Callable[["re.Match[str]"], str]


@dataclass(frozen=True, slots=True)
class Rule:
    """A detection rule. `group` names the part of the match that is the identifier (the rest
    is context that stays); `check` can veto a candidate; `classify` picks the type from the
    match when one pattern serves several types (ARNs)."""

    type: str
    regex: re.Pattern[str]
    group: int | str = 0
    check: Check | None = None
    classify: Classify | None = None
    priority: int = 50
    # Speed (the identifiers are sparse): a rule with `anchors` only runs in windows around
    # occurrences of those lower-case literals, from `before` chars ahead of one to `after`
    # chars past it. A rule without anchors scans the whole text; its pattern then starts with
    # a literal where possible and the "not preceded by" test is `not_after` (a one-char
    # pattern) instead of a leading lookbehind, which would defeat the regex engine's
    # literal-prefix search.
    anchors: tuple[str, ...] = ()
    before: int = 0
    after: int = 300
    not_after: re.Pattern[str] | None = None
    # After an at-anchor match: further items of a list ("buckets a, b and c"), each a match
    # of this pattern at the end of the previous one, checked like the first.
    more: re.Pattern[str] | None = None
    # The pattern starts with its anchor (context phrases): it is tried only right there.
    at_anchor: bool = False
    # Windows start at the token holding the anchor (whitespace, quotes, brackets end one).
    token_start: bool = False
    # Cheap skips before any regex runs: a substring every match contains, a shortest match.
    needle: str | None = None
    min_length: int = 1
    # A prefilter for rules without anchors: a cheap test (a literal-led regex, or a callable)
    # that holds for every text the rule can match. Rules sharing one hint object share its
    # result, so the twelve hex-id rules cost one search when no `-` + 8 hex digits is there.
    hint: re.Pattern[str] | Callable[[str], bool] | None = None
    # Or the rule's own windows, computed from the text (the rule runs only inside them).
    windows: Callable[[str], list[tuple[int, int]]] | None = None


# --- building blocks ---------------------------------------------------------------------

_HEX_ID_TYPES: list[tuple[str, str]] = [
    ("EC2", "i"),
    ("AMI", "ami"),
    ("EBS_VOL", "vol"),
    ("SNAPSHOT", "snap"),
    ("EFS", "fs"),
    ("VPC", "vpc"),
    ("SUBNET", "subnet"),
    ("SECURITY_GROUP", "sg"),
    ("IGW", "igw"),
    ("NAT_GW", "nat"),
    ("VPN", "vpn"),
    ("TGW", "tgw"),
]

# A bucket name (S3 naming rules: 3-63 chars, lower-case letters, digits, dots, hyphens) that
# does not continue into a longer name.
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?![a-z0-9-]|\.[a-z0-9])"
# A resource name in prose after its context word (rds instance NAME, ...).
_NAME = r"[A-Za-z][A-Za-z0-9-]{1,62}(?![A-Za-z0-9-])"
_SEP = r"""["'`]?\s*(?:[:=]|\bis\b)?\s*["'`]?"""
_REGION = r"[a-z]{2}(?:-gov)?-[a-z]+-\d"
# Between items of a list after one context word: "buckets a, b and c", "a와 b".
_LIST_SEP = r"""["'`]?(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+|\s*(?:와|과|및)\s*)["'`]?"""
_GLUE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{1,254}(?<![.-])(?![\w-]|\.\w)"
_ACCOUNT_NUMBER = r"(?<![\w-])(?:\d{12}|\d{4}-\d{4}-\d{4})(?![\w-])"


def _ci(pattern: str) -> str:
    """A case-insensitive context phrase (the identifier after it keeps its own case rules),
    ending at a word end so that `DBInstanceId` cannot stop short of `DBInstanceIdentifier`."""
    return f"(?i:{pattern})(?![A-Za-z0-9])"


def _looks_like_name(value: str) -> bool:
    """A prose name after a context word counts only if it cannot be an ordinary word: it has a
    hyphen, digit, dot or underscore ("the rds instance is down" masks nothing)."""
    return any(c in value for c in "-._") or any(c.isdigit() for c in value)


def _bucket_name_check(group: str) -> Check:
    """S3 forbids bucket names formatted as IP addresses; prose needs `_looks_like_name`."""
    return lambda _text, m: (
        _looks_like_name(m.group(group)) and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", m.group(group))
    )


# `aws elasticache describe-cache-clusters ...`: a CLI operation after a context word.
_CLI_VERB = re.compile(
    r"(?:describe|create|delete|modify|list|get|put|update|start|stop|reboot|add|remove|batch"
    r"|copy|test|increase|decrease|failover|purchase|reset|revoke|authorize|wait|restore)-"
)


def _name_check(group: int | str) -> Check:
    return lambda _text, m: _looks_like_name(m.group(group)) and not _CLI_VERB.match(m.group(group))


def _secret_key_check(_text: str, m: re.Match[str]) -> bool:
    """40 base64 characters are a secret access key only if they look random: upper, lower and
    digits all present, few separators (a path like Docs/Guide/... is not a key), not hex."""
    v = m.group(0)
    if len(v) != 40:
        return False
    if not (any(c.isupper() for c in v) and any(c.islower() for c in v)):
        return False
    if not any(c.isdigit() for c in v):
        return False
    return v.count("/") + v.count("+") <= 6 and not re.fullmatch(r"[0-9a-fA-F]+", v)


def _glue_on_line(text: str, m: re.Match[str]) -> bool:
    """`--job-name` is a Glue job only in a glue command (Batch has the same flag)."""
    line_start = text.rfind("\n", 0, m.start()) + 1
    return "glue" in text[line_start : m.start()].lower()


def _has_digit(_text: str, m: re.Match[str]) -> bool:
    return any(c.isdigit() for c in m.group(0))


_KMS_CONTEXT = re.compile(r"(?i)kms|key[ _-]?id|key/|customer[ _-]master[ _-]key|cmk|키\s*ID")


def _kms_context(text: str, m: re.Match[str]) -> bool:
    """A UUID is a KMS key id only when KMS context precedes it closely."""
    return bool(_KMS_CONTEXT.search(text, max(0, m.start() - 40), m.start()))


_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\b(?:version|release|build|ver\.?)|버전|릴리스)\s*[:=]?\s*$", re.ASCII
)
# Words that make a dotted quad of single digits an address after all ("dns 1.1.1.1").
_NETWORK_CONTEXT = re.compile(
    r"(?i)\b(?:ip|ips|ipv4|addr|address|host|server|client|peer|dns|nameserver|resolver|from|"
    r"to|via|src|dst|source|destination|cidr|subnet|eip|nat|route|ping|connect(?:ed|ing)?)\b"
    r"|주소|아이피",
    re.ASCII,
)


def _ipv4_kind(text: str, m: re.Match[str]) -> str | None:
    """PUBLIC_IP, PRIVATE_IP, or None for what is not an address worth masking: invalid octets,
    leading zeros, loopback, unspecified, multicast/reserved/netmasks, link-local metadata, and
    version numbers: after a version word, or four single-digit parts (`Kong Gateway: 3.9.0.1`)
    with no network word shortly before (`dns 1.1.1.1` stays an address)."""
    value = m.group(0)
    parts = value.split(".")
    if any(len(o) > 1 and o[0] == "0" for o in parts):
        return None
    octets = [int(o) for o in parts]
    if max(octets) > 255:
        return None
    first, second = octets[0], octets[1]
    if first in (0, 127) or first >= 224 or (first, second) == (169, 254):
        return None
    if _VERSION_CONTEXT.search(text, max(0, m.start() - 16), m.start()):
        return None
    if len(value) == 7 and not _NETWORK_CONTEXT.search(text, max(0, m.start() - 32), m.start()):
        return None
    return "PRIVATE_IP" if _is_private(value) else "PUBLIC_IP"


def _is_private(value: str) -> bool:
    """10/8, 172.16/12, 192.168/16 (integer tests: `ipaddress` costs more than the scan)."""
    first, second = (int(o) for o in value.split(".")[:2])
    return first == 10 or (first == 172 and 16 <= second <= 31) or (first, second) == (192, 168)


def _ipv6_check(_text: str, m: re.Match[str]) -> bool:
    """Real IPv6 only: it must parse, and a compressed form needs three groups or a full
    4-digit group, so times (12:30:45), MACs and `::1`-style loopbacks stay."""
    value = m.group(0)
    colons = value.count(":")
    # Cheap rejections first (times like 12:30:45 are frequent): full form or `::` only.
    if colons < 2 or ("::" not in value and colons != 7):
        return False
    try:
        ip = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return False
    groups = [g for g in value.split(":") if g]
    if "::" not in value:
        return len(groups) == 8
    return len(groups) >= 3 or any(len(g) == 4 for g in groups)


# ARN service -> (resource prefix or "" for any, type). First match wins.
_ARN_TYPES: list[tuple[str, str, str]] = [
    ("iam", "role/", "IAM_ROLE"),
    ("iam", "user/", "IAM_USER"),
    ("lambda", "", "LAMBDA_ARN"),
    ("elasticloadbalancing", "", "ELB_ARN"),
    ("ecs", "task/", "ECS_TASK"),
    ("acm", "", "ACM_CERT"),
    ("secretsmanager", "", "SECRET_ARN"),
    ("ssm", "parameter/", "PARAM_ARN"),
    ("codecommit", "", "CODECOMMIT"),
    ("dynamodb", "", "DYNAMODB_TABLE"),
    ("sns", "", "SNS_TOPIC"),
    ("kinesis", "", "KINESIS"),
    ("es", "", "OPENSEARCH"),
    ("aoss", "", "OPENSEARCH"),
    ("states", "", "STEP_FUNCTION"),
    ("batch", "job-queue/", "BATCH_QUEUE"),
    ("athena", "workgroup/", "ATHENA"),
    ("cloudformation", "", "CLOUDFORMATION"),
    ("eks", "cluster/", "EKS_CLUSTER"),
    ("sagemaker", "endpoint/", "SAGEMAKER"),
    ("kms", "", "KMS_KEY"),
    ("glue", "job/", "GLUE_JOB"),
]


def _arn_type(m: re.Match[str]) -> str:
    service, resource = m.group("svc"), m.group("res")
    if service == "s3":
        return _bucket_type(resource.split("/", 1)[0])
    for svc, prefix, type_ in _ARN_TYPES:
        if service == svc and resource.startswith(prefix):
            return type_
    return "ARN"


def _bucket_type(name: str) -> str:
    """Buckets whose name says they hold logs are their own type (the original's s3 logs)."""
    return "S3_LOGS_BUCKET" if re.search(r"(?:^|[.-])logs?(?:$|[.-])", name) else "S3_BUCKET"


def _bucket_classify(group: str) -> Classify:
    return lambda m: _bucket_type(m.group(group))


def _r(pattern: str) -> re.Pattern[str]:
    """Every rule is compiled ASCII-only: `\\w`, `\\b`, `\\d` and `\\s` then mean ASCII identifier
    characters, so a Korean particle glued to an id (`i-0abc...에서`, `10.40.7.19으로`) is a
    boundary, as punctuation is, instead of a word character that blocks the match."""
    return re.compile(pattern, re.ASCII)


_WORD_OR_DASH = _r(r"[\w-]")
_HEX_HINT = _r(r"-[0-9a-fA-F]{8}")


_IPV4_CORE = _r(r"\.\d{1,3}\.\d{1,3}\.\d")


def _ipv4_windows(text: str) -> list[tuple[int, int]]:
    """Small windows around `.d.d.d` (a literal-led search): an address has its first octet
    at most 3 characters before and its last ends at most 3 after."""
    out: list[tuple[int, int]] = []
    for m in _IPV4_CORE.finditer(text):
        start, end = max(0, m.start() - 3), min(len(text), m.end() + 3)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _long_tokens(text: str) -> list[tuple[int, int]]:
    """Windows over the whitespace-free runs of at least 40 characters: a 40-character key lies
    inside one, and most prose has none (then the secret-key pattern never runs)."""
    out: list[tuple[int, int]] = []
    tokens = text.split()
    if max(map(len, tokens), default=0) < 40:
        return out
    pos = 0
    for token in [t for t in tokens if len(t) >= 40]:
        i = text.find(token, pos)
        pos = i + len(token)
        out.append((i, min(len(text), pos + 1)))  # + the delimiter: the match may end there
    return out


# Windows: host names end at "amazonaws.com" (a host is at most 253 chars; paths after it,
# as in ECR and SQS URLs, are short); a context phrase is followed closely by its value.
_HOST: dict[str, Any] = {
    "anchors": ("amazonaws.com",),
    "before": 300,
    "after": 300,
    "token_start": True,
}
_CTX: dict[str, Any] = {"at_anchor": True}


def _build_rules() -> list[Rule]:
    rules: list[Rule] = []
    # Priority: lower wins a tie on length. Specific structures beat generic shapes.
    for type_, prefix in _HEX_ID_TYPES:
        rules.append(
            Rule(
                type_,
                _r(rf"{prefix}-(?:[0-9a-fA-F]{{17}}|[0-9a-fA-F]{{8}})(?![\w-])"),
                priority=20,
                not_after=_WORD_OR_DASH,
                needle=f"{prefix}-",
                min_length=len(prefix) + 9,
                hint=_HEX_HINT,
            )
        )
    rules += [
        Rule(
            "ARN",
            _r(
                r"(?<![\w-])arn:aws(?:-cn|-us-gov)?:(?P<svc>[a-z0-9-]+):(?:[a-z0-9-]*):"
                r"(?:\d{12}|aws)?:(?P<res>[A-Za-z0-9_+=.@:/*$!#-]*[A-Za-z0-9_+=@/*$-])"
            ),
            classify=_arn_type,
            priority=10,
            anchors=("arn:",),
            at_anchor=True,
        ),
        Rule(
            "ECR_URI",
            _r(
                r"(?<![\w-])\d{12}\.dkr\.ecr\." + _REGION + r"\.amazonaws\.com(?:\.cn)?"
                r"(?:/[a-z0-9][a-z0-9._/-]*[a-z0-9])?"
            ),
            priority=10,
            **_HOST,
        ),
        Rule(
            "SQS_QUEUE",
            _r(
                r"https?://(?:sqs\." + _REGION + r"|queue)\.amazonaws\.com/\d{12}/"
                r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?(?![\w-])"
            ),
            priority=10,
            **_HOST,
        ),
        Rule(
            "API_GATEWAY",
            _r(r"(?<![\w.-])[a-z0-9]{10}\.execute-api\." + _REGION + r"\.amazonaws\.com"),
            priority=10,
            **_HOST,
        ),
        Rule(
            "RDS",
            _r(
                # instance `db.<12>.`, Aurora `c.cluster-<12>.` / `c.cluster-ro-<12>.` /
                # `c.cluster-custom-<12>.`, RDS Proxy `p.proxy-<12>.` / `e.endpoint.proxy-<12>.`
                r"(?<![\w.-])[a-z][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){1,2}\."
                + _REGION
                + r"\.rds\.amazonaws\.com(?:\.cn)?"
            ),
            priority=10,
            **_HOST,
        ),
        Rule(
            "REDSHIFT",
            _r(
                r"(?<![\w.-])[a-z][a-z0-9-]{0,62}\.[a-z0-9]+\."
                + _REGION
                + r"\.redshift(?:-serverless)?\.amazonaws\.com"
            ),
            priority=10,
            **_HOST,
        ),
        Rule(
            "ELASTICACHE",
            _r(r"(?<![\w.-])[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+\.cache\.amazonaws\.com"),
            priority=10,
            **_HOST,
        ),
        # S3 bucket contexts: s3://B, B.s3[.region].amazonaws.com, s3[.region].amazonaws.com/B.
        Rule(
            "S3_BUCKET",
            _r(r"(?i:s3)://(?P<id>" + _BUCKET + ")"),
            group="id",
            classify=_bucket_classify("id"),
            priority=15,
            anchors=("s3://",),
            after=80,
        ),
        Rule(
            "S3_BUCKET",
            _r(
                r"(?<![\w.-])(?P<id>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
                r"\.s3(?:[.-](?:website[.-])?"
                + _REGION
                + r"|[.-]accelerate|\.dualstack\."
                + _REGION
                + r")?\.amazonaws\.com"
            ),
            group="id",
            classify=_bucket_classify("id"),
            priority=15,
            **_HOST,
        ),
        Rule(
            "S3_BUCKET",
            _r(r"(?<![\w.-])s3(?:[.-]" + _REGION + r")?\.amazonaws\.com/(?P<id>" + _BUCKET + ")"),
            group="id",
            classify=_bucket_classify("id"),
            priority=15,
            **_HOST,
        ),
        Rule(
            "S3_BUCKET",
            # "bucket x", "S3 buckets x, y and z", "bucket named x", "BucketName": "x",
            # "버킷 x", "버킷 이름: x". The list continuation is `more`.
            _r(
                r"(?:"
                + _ci(r"bucket(?:s|[ _-]?names?)?(?:\s+(?:named|called))?")
                + r"|버킷(?:\s*(?:이름|명)(?:은|는|이|:)?)?)"
                + _SEP
                + "(?P<id>"
                + _BUCKET
                + ")"
            ),
            group="id",
            check=_bucket_name_check("id"),
            classify=_bucket_classify("id"),
            priority=40,
            anchors=("bucket", "버킷"),
            more=_r(_LIST_SEP + "(?P<id>" + _BUCKET + ")"),
            **_CTX,
        ),
        Rule(
            "S3_BUCKET",
            # Korean puts the name first: "my-bucket 버킷에", "logs-prod S3 버킷".
            _r(r"(?<![\w.-])(?P<id>" + _BUCKET + r")[`'\"]?\s*(?:(?i:s3)\s*)?버킷"),
            group="id",
            check=_bucket_name_check("id"),
            classify=_bucket_classify("id"),
            priority=40,
            anchors=("버킷",),
            before=80,
            after=2,
        ),
        Rule(
            "RDS",
            _r(
                _ci(
                    r"\b(?:rds|db)[ _-]?(?:instance|cluster|database)s?"
                    r"(?:[ _-]?(?:identifier|id|name))?"
                    r"|\b(?:rds|db)\s*(?:인스턴스|클러스터|데이터베이스)(?:\s*(?:이름|명))?"
                    r"|\bDB(?:Instance|Cluster)Identifier"
                )
                + _SEP
                + "(?P<id>"
                + _NAME
                + ")"
            ),
            group="id",
            check=_name_check("id"),
            priority=40,
            anchors=("rds", "db"),
            more=_r(_LIST_SEP + "(?P<id>" + _NAME + ")"),
            **_CTX,
        ),
        Rule(
            "REDSHIFT",
            _r(
                _ci(
                    r"\bredshift[ _-]?cluster(?:[ _-]?(?:identifier|id|name))?|\bClusterIdentifier"
                    r"|\bredshift\s*클러스터(?:\s*(?:이름|명))?"
                )
                + _SEP
                + "(?P<id>"
                + _NAME
                + ")"
            ),
            group="id",
            check=_name_check("id"),
            priority=40,
            anchors=("redshift", "clusteridentifier"),
            **_CTX,
        ),
        Rule(
            "ELASTICACHE",
            _r(
                _ci(
                    r"\belasticache[ _-]?(?:cluster|replication[ _-]?group|node)?"
                    r"(?:[ _-]?(?:id|name))?|\bcache[ _-]?cluster[ _-]?id"
                    r"|\breplication[ _-]?group[ _-]?id"
                    r"|\belasticache\s*(?:클러스터|복제\s*그룹|노드)(?:\s*(?:이름|명))?"
                )
                + _SEP
                + "(?P<id>"
                + _NAME
                + ")"
            ),
            group="id",
            check=_name_check("id"),
            priority=40,
            anchors=(
                "elasticache",
                "cacheclusterid",
                "cache-cluster-id",
                "cache_cluster_id",
                "replicationgroupid",
                "replication-group-id",
                "replication_group_id",
            ),
            **_CTX,
        ),
        Rule(
            "GLUE_JOB",
            _r(_ci(r"\bglue[ _-]?job(?:[ _-]?name)?") + _SEP + r"(?P<id>" + _GLUE_NAME + ")"),
            group="id",
            check=_name_check("id"),
            priority=40,
            anchors=("glue",),
            **_CTX,
        ),
        Rule(
            "GLUE_JOB",
            # "Glue 작업 nightly-etl", "글루 잡: x"
            _r(
                r"(?i:glue|글루)\s*(?:작업|잡|job)(?:\s*이름)?(?:은|는|이|을|:)?"
                + _SEP
                + r"(?P<id>"
                + _GLUE_NAME
                + ")"
            ),
            group="id",
            check=_name_check("id"),
            priority=40,
            anchors=("glue", "글루"),
            **_CTX,
        ),
        Rule(
            "GLUE_JOB",
            # `aws glue start-job-run --job-name X` (and get-job-runs, ...): glue on the line.
            _r(r"--job-name(?:\s+|=)[\"']?(?P<id>" + _GLUE_NAME + ")"),
            group="id",
            check=_glue_on_line,
            priority=40,
            anchors=("--job-name",),
            **_CTX,
        ),
        Rule(
            "ACCOUNT_ID",
            # A 12-digit number (or 1234-5678-9012) close to a word or key naming an account:
            # "account 1234...", "awsAccountId": "...", "OwnerId", "type": "account", ... "id",
            # "Principal": {"AWS": "..."}, "계정 ...". Ids learned from ARNs are `masking`'s.
            _r(_ACCOUNT_NUMBER),
            priority=40,
            anchors=("account", "owner", "principal", "계정"),
            before=60,
            after=80,
        ),
        Rule(
            "KMS_KEY",
            _r(
                r"(?<![\w-])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}|mrk-[0-9a-f]{32})(?![\w-])"
            ),
            check=_kms_context,
            priority=30,
            anchors=("kms", "key", "cmk", "customer master"),
            after=120,
        ),
        Rule(
            "ACCESS_KEY",
            # Access keys are 20 characters; the unique ids of users, roles and policies
            # (AIDA..., AROA..., ANPA...) are 21: both are masked whole.
            _r(r"A(?:KIA|SIA|IDA|ROA|NPA|GPA)[A-Z0-9]{16,17}(?![A-Za-z0-9])"),
            priority=20,
            not_after=_r(r"[A-Za-z0-9]"),
            hint=_r(r"A(?:KIA|SIA|IDA|ROA|NPA|GPA)"),
        ),
        Rule(
            "SESSION_TOKEN",
            _r(
                r"(?<![A-Za-z0-9/+])(?:IQoJb3JpZ2luX2|FwoGZXIvYXdzE|FQoGZXIvYXdzE)"
                r"[A-Za-z0-9/+=]{60,}"
            ),
            priority=20,
            windows=_long_tokens,
        ),
        Rule(
            "SESSION_TOKEN",
            _r(
                _ci(r"session[ _-]?token|security[ _-]?token")
                + _SEP
                + r"(?P<id>[A-Za-z0-9/+=]{100,})"
            ),
            group="id",
            priority=25,
            anchors=("session", "security"),
            at_anchor=True,
        ),
        Rule(
            "SECRET_KEY",
            # Whole runs of the base64 alphabet (possessive: a longer run is one candidate,
            # rejected by the check, never a 40-char slice of it).
            _r(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40,}+(?![A-Za-z0-9/+=])"),
            check=_secret_key_check,
            priority=60,
            min_length=40,
            windows=_long_tokens,
        ),
        Rule(
            "SECRET_KEY",
            # Named as a secret key (AWS_SECRET_ACCESS_KEY=..., "SecretAccessKey": ...): any
            # 40 characters of the alphabet, random-looking or not.
            _r(
                "(?:"
                + _ci(r"secret[ _-]?access[ _-]?key|secret[ _-]?key")
                + r"|(?:시크릿|비밀)\s*(?:액세스\s*)?키(?:는|은|가|:)?)"
                + _SEP
                + r"(?P<id>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
            ),
            group="id",
            priority=25,
            anchors=("secret", "시크릿", "비밀"),
            at_anchor=True,
        ),
        Rule(
            "CLOUDFRONT",
            # Named as a distribution, an id needs no digit (EDFDVBDEXAMPLE).
            _r(r"(?<![\w-])E[0-9A-Z]{12,13}(?![\w-])"),
            priority=55,
            anchors=("cloudfront", "distribution", "배포"),
            after=120,
        ),
        Rule(
            "ROUTE53_ZONE",
            _r(r"Z[0-9A-Z]{12,31}(?![\w-])"),
            check=_has_digit,
            priority=60,
            not_after=_WORD_OR_DASH,
            needle="Z",
            min_length=13,
        ),
        Rule(
            "CLOUDFRONT",
            _r(r"E[0-9A-Z]{12,13}(?![\w-])"),
            check=_has_digit,
            priority=60,
            not_after=_WORD_OR_DASH,
            needle="E",
            min_length=13,
        ),
        Rule(
            "LOG_GROUP",
            _r(r"(?<![\w/.-])/aws/[a-z0-9-]+(?:/[A-Za-z0-9_.#$-]*[A-Za-z0-9_#$-])+"),
            priority=30,
            anchors=("/aws/",),
            after=1024,
        ),
        Rule(
            "IPV6",
            # Runs of hex digits and colons ending in a digit or `::`: a colon or period after
            # the address is punctuation ("... 2001:db8::1: timeout", "... ::1.").
            _r(
                # (the lookarounds first: only a run with a colon in its first five characters
                # is tried, so hex-letter words in prose cost nothing)
                r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:)"
                r"(?:[0-9A-Fa-f:]{2,}[0-9A-Fa-f]|[0-9A-Fa-f:]*::)"
                r"(?![\w]|\.[0-9A-Za-z]|:?[0-9A-Fa-f]|::)"
            ),
            check=_ipv6_check,
            priority=70,
            # `::` then at most 4 hex digits (not `iam::123456789012:` of an ARN), or three
            # colon groups (the full form)
            hint=_r(
                r"::(?:[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z_])"
                r"|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"
            ),
            not_after=_r(r"[\w:.]"),
            needle=":",
            min_length=6,
        ),
        Rule(
            "PUBLIC_IP",
            _r(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w]|\.\d)"),
            check=lambda text, m: _ipv4_kind(text, m) is not None,
            classify=lambda m: "PRIVATE_IP" if _is_private(m.group(0)) else "PUBLIC_IP",
            priority=70,
            not_after=_r(r"[\w.]"),
            windows=_ipv4_windows,
            needle=".",
            min_length=7,
        ),
    ]
    return rules


RULES = _build_rules()

#: Every type the engine can produce, in the order of the reference list.
TYPES: tuple[str, ...] = (
    *(t for t, _ in _HEX_ID_TYPES),
    "S3_BUCKET", "S3_LOGS_BUCKET", "ECR_URI", "RDS", "REDSHIFT", "ACCESS_KEY", "SECRET_KEY",
    "SESSION_TOKEN", "IAM_ROLE", "IAM_USER", "LAMBDA_ARN", "ELB_ARN", "ECS_TASK", "ACM_CERT",
    "SECRET_ARN", "PARAM_ARN", "CODECOMMIT", "DYNAMODB_TABLE", "SNS_TOPIC", "KINESIS",
    "OPENSEARCH", "STEP_FUNCTION", "BATCH_QUEUE", "ATHENA", "CLOUDFORMATION", "EKS_CLUSTER",
    "SAGEMAKER", "ARN", "KMS_KEY", "SQS_QUEUE", "API_GATEWAY", "ROUTE53_ZONE", "LOG_GROUP",
    "IPV6", "PUBLIC_IP", "PRIVATE_IP", "ELASTICACHE", "GLUE_JOB", "ACCOUNT_ID", "CLOUDFRONT",
)  # fmt: skip

#: One synthetic identifier per type, written in the context the type needs.
EXAMPLES: dict[str, str] = {
    "EC2": "i-1234567890abcdef0",
    "AMI": "ami-0abcdef1234567890",
    "EBS_VOL": "vol-049df61146f12c45a",
    "SNAPSHOT": "snap-066877671789bd71b",
    "EFS": "fs-12345678",
    "VPC": "vpc-0123456789abcdef0",
    "SUBNET": "subnet-1234567890abcdef0",
    "SECURITY_GROUP": "sg-0123456789abcdef0",
    "IGW": "igw-12345678",
    "NAT_GW": "nat-1234567890abcdef0",
    "VPN": "vpn-12345678",
    "TGW": "tgw-1234567890abcdef0",
    "S3_BUCKET": "s3://my-production-bucket/key",
    "S3_LOGS_BUCKET": "s3://my-app-logs/2024/01/01.log",
    "ECR_URI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-app",
    "RDS": "prod-db.abcdefghijkl.us-east-1.rds.amazonaws.com",
    "REDSHIFT": "analytics-cluster.abc123xyz789.us-east-1.redshift.amazonaws.com",
    "ACCESS_KEY": "AKIA1234567890ABCDEF",
    "SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "SESSION_TOKEN": "FwoGZXIvYXdzEBYaDH7gJ5ZTb2d4ExAmPlE" + "Q1w2E3r4T5y6U7i8O9p0" * 4,
    "IAM_ROLE": "arn:aws:iam::123456789012:role/ProductionRole",
    "IAM_USER": "arn:aws:iam::123456789012:user/alice",
    "LAMBDA_ARN": "arn:aws:lambda:us-east-1:123456789012:function:my-function",
    "ELB_ARN": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
    "loadbalancer/app/my-alb/50dc6c495c0c9188",
    "ECS_TASK": "arn:aws:ecs:us-east-1:123456789012:"
    "task/my-cluster/0123456789abcdef0123456789abcdef",
    "ACM_CERT": "arn:aws:acm:us-east-1:123456789012:"
    "certificate/12345678-1234-1234-1234-123456789012",
    "SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
    "PARAM_ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password",
    "CODECOMMIT": "arn:aws:codecommit:us-east-1:123456789012:my-repo",
    "DYNAMODB_TABLE": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
    "SNS_TOPIC": "arn:aws:sns:us-east-1:123456789012:alerts-topic",
    "KINESIS": "arn:aws:kinesis:us-east-1:123456789012:stream/clickstream",
    "OPENSEARCH": "arn:aws:es:us-east-1:123456789012:domain/search-prod",
    "STEP_FUNCTION": "arn:aws:states:us-east-1:123456789012:stateMachine:OrderFlow",
    "BATCH_QUEUE": "arn:aws:batch:us-east-1:123456789012:job-queue/high-priority",
    "ATHENA": "arn:aws:athena:us-east-1:123456789012:workgroup/analysts",
    "CLOUDFORMATION": "arn:aws:cloudformation:us-east-1:123456789012:"
    "stack/prod-stack/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    "EKS_CLUSTER": "arn:aws:eks:us-east-1:123456789012:cluster/prod-eks",
    "SAGEMAKER": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn-model",
    "ARN": "arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0",
    "KMS_KEY": "kms key 1234abcd-12ab-34cd-56ef-1234567890ab",
    "SQS_QUEUE": "https://sqs.us-east-1.amazonaws.com/123456789012/MyQueue",
    "API_GATEWAY": "abcd123456.execute-api.us-east-1.amazonaws.com",
    "ROUTE53_ZONE": "Z1234567890ABC",
    "LOG_GROUP": "/aws/lambda/MyFunction",
    "IPV6": "2001:db8:85a3::8a2e:370:7334",
    "PUBLIC_IP": "203.0.113.1",
    "PRIVATE_IP": "10.0.1.23",
    "ELASTICACHE": "my-redis.abc123.0001.use1.cache.amazonaws.com",
    "GLUE_JOB": "glue job nightly-etl",
    "ACCOUNT_ID": "account 123456789012",
    "CLOUDFRONT": "E1234567890ABC",
}  # fmt: skip
