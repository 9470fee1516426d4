from __future__ import annotations

import pytest

from kongmasker.api.spec import StackSpec, parse_cpu, parse_memory
from kongmasker.config import Settings
from kongmasker.errors import InvalidSpec

pytestmark = pytest.mark.unit


def test_defaults_mirror_the_crd() -> None:
    spec = StackSpec.from_dict({"upstream": {"url": "http://x:1"}})
    assert spec.host_ports() == {
        "redis.port": 6379,
        "kong.proxyPort": 8000,
        "kong.adminPort": 8001,
        "kong.statusPort": 8100,
        "nginx.port": 8085,
        "backend.port": 3000,
    }
    assert spec.network.mode == "host" and spec.redis.image == "kongmasker/redis:dev"
    assert spec.secret_refs() == {}
    assert StackSpec.from_dict({"paused": True}).upstream.url == "https://api.anthropic.com"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"upstream": {"url": "http://x"}, "nginx": {"port": 8000}}, "nginx.port"),
        ({"upstream": {"url": "ftp://x"}}, "upstream.url"),
        ({"upstream": {"url": "http://x"}, "network": {"mode": "bridge"}}, "network.name"),
        ({"upstream": {"url": "http://x"}, "redis": {"resources": {"memory": "lots"}}}, "memory"),
    ],
)
def test_semantic_errors_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidSpec, match=field.replace(".", r"\.")):
        StackSpec.from_dict(raw)


def test_secret_refs_default_keys() -> None:
    spec = StackSpec.from_dict(
        {
            "upstream": {"url": "http://x", "apiKeySecretRef": {"name": "up"}},
            "redis": {"passwordSecretRef": {"name": "r"}},
            "backend": {"apiKeySecretRef": {"name": "b", "key": "token"}},
        }
    )
    refs = {k: (v.name, v.key) for k, v in spec.secret_refs().items()}
    assert refs == {
        "REDIS_PASSWORD": ("r", "password"),
        "ANTHROPIC_API_KEY": ("up", "api-key"),
        "BACKEND_API_KEY": ("b", "token"),
    }


@pytest.mark.parametrize(
    ("q", "n"), [("256Mi", 256 * 2**20), ("1G", 10**9), ("512", 512), ("1.5Gi", int(1.5 * 2**30))]
)
def test_memory_quantities(q: str, n: int) -> None:
    assert parse_memory(q) == n


@pytest.mark.parametrize(
    ("q", "n"), [("500m", 500_000_000), ("2", 2_000_000_000), ("0.25", 250_000_000)]
)
def test_cpu_quantities(q: str, n: int) -> None:
    assert parse_cpu(q) == n


def test_settings_env_overrides() -> None:
    s = Settings.from_env(
        {
            "KONGMASKER_RECONCILE_INTERVAL": "7",
            "KONGMASKER_STOP_GRACE_SECONDS": "3",
            "KONGMASKER_OPERATOR_NAMESPACES": "a, b",
            "LOG_LEVEL": "DEBUG",
        }
    )
    assert s.reconcile.interval == 7.0 and s.stop.grace_seconds == 3
    assert s.operator.namespaces == ("a", "b") and s.operator.log_level == "DEBUG"
    with pytest.raises(ValueError, match="KONGMASKER_STOP_GRACE_SECONDS"):
        Settings.from_env({"KONGMASKER_STOP_GRACE_SECONDS": "soon"})
